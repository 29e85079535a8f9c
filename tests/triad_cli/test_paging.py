"""Lists iterate over every page, fetching the next only when the loop gets there; a limit stops early."""

from urllib.parse import parse_qs, urlsplit

from tests.triad_cli.stand_ins import Answer, ScriptedServer
from triad import Client


def _pages_of(total: int):
    def script(seen, request):
        query = parse_qs(urlsplit(request.path).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        items = [{"id": i} for i in range((page - 1) * per_page, min(page * per_page, total))]
        pages = -(-total // per_page)
        return Answer(
            200, {"items": items, "count": total, "page": page, "per_page": per_page, "pages": pages}
        )

    return script


def test_every_page_is_read_in_turn_and_only_when_needed():
    with ScriptedServer(_pages_of(450)) as server:
        runs = Client(server.url, "t").runs(status="running")
        assert server.seen == []  # nothing asked before the loop starts
        first = next(runs)
        assert first == {"id": 0} and len(server.seen) == 1
        rest = list(runs)

    assert [r["id"] for r in [first, *rest]] == list(range(450))
    queries = [parse_qs(urlsplit(s.path).query) for s in server.seen]
    assert [(q["page"], q["per_page"], q["status"]) for q in queries] == [
        (["1"], ["200"], ["running"]),
        (["2"], ["200"], ["running"]),
        (["3"], ["200"], ["running"]),
    ]


def test_a_limit_asks_for_no_more_than_it_needs():
    with ScriptedServer(_pages_of(450)) as server:
        got = list(Client(server.url, "t").runs(limit=5))

    assert [r["id"] for r in got] == [0, 1, 2, 3, 4]
    assert len(server.seen) == 1 and "per_page=5" in server.seen[0].path
