"""`python -m triad ...` is the `triad` command."""

import sys

from triad.cli import main

sys.exit(main())
