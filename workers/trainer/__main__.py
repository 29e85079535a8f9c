"""Entry point: ``python -m workers.trainer --spec PATH`` (run on every rank by the deepspeed launcher)."""

import sys

from workers.trainer.loop import main

if __name__ == "__main__":
    sys.exit(main())
