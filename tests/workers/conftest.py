from collections.abc import Iterator

import pytest

from tests.workers.supervised import TOKEN
from tests.workers.trainer.fake_control import FakeControl


@pytest.fixture
def control() -> Iterator[FakeControl]:
    """The in-test control plane of a supervised run (tests/workers/supervised.py); the test sets its
    spec and, where it likes, its answers."""
    fake = FakeControl(token=TOKEN).start()
    yield fake
    fake.stop()
