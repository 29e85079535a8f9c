from runs.models import TERMINAL_STATUSES
from triad.client import FINISHED_STATUSES


def test_the_client_stops_following_logs_at_the_servers_terminal_states():
    # The client cannot import the server's list (it installs without Django), so it keeps a copy.
    assert {str(status) for status in TERMINAL_STATUSES} == FINISHED_STATUSES
