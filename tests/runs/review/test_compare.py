"""Side by side: two generations of one problem, with a test-by-test pass matrix that a sandbox worker
computes into the database (never the web process) while the page polls for it."""

import uuid

import pytest

from runs.review.matrix import split_asserts
from runs.review.models import CompareMatrix, MatrixStatus
from runs.review.selectors import CompareSide
from runs.review.services import ENQUEUE_FAILED, review_generations_compare
from runs.review.tasks import review_compare_matrix_task
from tests.factories import GenerationFactory, ProblemFactory, RunFactory

pytestmark = pytest.mark.django_db

TESTS = (
    "import math\n"
    "def check(candidate):\n"
    "    x = 2\n"
    "    assert candidate(1, 2) == 3\n"
    "    assert candidate(x, 0) == 2\n"
    "    for i in range(3):\n"
    "        assert candidate(i, i) == 2 * i\n"
)


def test_humaneval_tests_split_into_one_check_per_assert_keeping_set_up():
    cases = split_asserts(TESTS)

    assert [c.source for c in cases][:2] == ["assert candidate(1, 2) == 3", "assert candidate(x, 0) == 2"]
    assert len(cases) == 3  # a loop of asserts is one row
    assert "x = 2" in cases[1].tests and "candidate(1, 2)" not in cases[1].tests
    assert cases[0].tests.startswith("import math")


def test_mbpp_top_level_asserts_split_one_per_program():
    cases = split_asserts("data = [1, 2]\nassert f(data) == 3\nassert f([]) == 0\n")

    assert [c.tests for c in cases] == [
        "data = [1, 2]\nassert f(data) == 3",
        "data = [1, 2]\nassert f([]) == 0",
    ]


def test_unparsable_tests_give_no_rows():
    assert split_asserts("def check(:\n") == []


def _pair(tests=TESTS, a="    return a * b\n", b="    return a + b\n"):
    problem = ProblemFactory(tests=tests)
    run = RunFactory(dataset_version=problem.version)
    return (
        GenerationFactory(run=run, step=1, problem_id=problem.task_id, completion=a),
        GenerationFactory(run=run, step=2, problem_id=problem.task_id, completion=b),
    )


def _deliver(matrix: CompareMatrix) -> int:
    """The sandbox queue's task, with the message the web process queued (no database needed there);
    under `eager`, the control queue's record of its rows runs in place."""
    return review_compare_matrix_task(matrix.pk, matrix.programs, matrix.tests, matrix.entry_point)


def _no_sandbox_here(monkeypatch):
    """The web process must never reach the sandbox: make any call to it fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("sandbox code ran in the web process")

    monkeypatch.setattr("workers.sandbox.run_batch", refuse)


def _poll(client, a, b):
    """What the page's matrix section asks every second: the `#matrix` partial."""
    return client.get(
        "/review/compare/", {"a": a.pk, "b": b.pk}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="matrix"
    )


def test_the_compare_page_runs_no_code_and_shows_the_matrix_pending(
    logged_in, user, monkeypatch, django_capture_on_commit_callbacks
):
    _no_sandbox_here(monkeypatch)
    a, b = _pair(a="    return a - b  # <script>\n")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="code-a"' in html and 'data-testid="code-reference"' in html
    assert "# &lt;script&gt;" in html  # the code shows at once, escaped
    assert 'data-status="pending"' in html and 'hx-trigger="every 1s"' in html
    assert 'data-testid="matrix-row"' not in html
    matrix = CompareMatrix.objects.get()
    assert (matrix.status, matrix.rows, matrix.requested_by) == (MatrixStatus.PENDING, [], user)
    assert len(callbacks) == 1  # queued for a sandbox worker once the request's transaction commits


def test_the_task_computes_the_matrix_into_the_database_and_the_partial_renders_it(
    logged_in, django_capture_on_commit_callbacks, eager
):
    a, b = _pair()
    with django_capture_on_commit_callbacks(execute=False):
        logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})
    matrix = CompareMatrix.objects.get()

    assert _deliver(matrix) == 3  # the real sandbox

    matrix.refresh_from_db()
    assert matrix.status == MatrixStatus.DONE and matrix.finished_at is not None
    # a * b: 1*2 != 3; 2*0 != 2; i*i == 2*i fails at i=1.
    assert [[c["passed"] for c in row["cells"]] for row in matrix.rows] == [[False, True, True]] * 3
    assert matrix.programs[0] == "def add(a, b):\n" + a.completion  # prompt + completion, as ingest ran it
    response = _poll(logged_in, a, b)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>" not in html  # the partial alone
    assert html.count('data-testid="matrix-row"') == 3 and "hx-trigger" not in html  # done: no more polls
    assert html.count("✓") == 6 and html.count("✗") == 3
    assert "assert candidate(1, 2) == 3" in html


def test_untrusted_text_in_the_matrix_is_escaped(logged_in, django_capture_on_commit_callbacks, eager):
    a, b = _pair(tests='def check(candidate):\n    assert candidate("<i>", "") == "<i>"\n')
    with django_capture_on_commit_callbacks(execute=False):
        logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})
    _deliver(CompareMatrix.objects.get())

    html = _poll(logged_in, a, b).content.decode()

    assert "&quot;&lt;i&gt;&quot;" in html and "<i>" not in html


def test_the_same_code_and_tests_are_computed_once(
    logged_in, monkeypatch, django_capture_on_commit_callbacks, eager
):
    a, b = _pair()
    # Another pair of generations (another step) holding the very same code: the same matrix.
    a2 = GenerationFactory(run=a.run, step=7, problem_id=a.problem_id, completion=a.completion)
    b2 = GenerationFactory(run=a.run, step=8, problem_id=a.problem_id, completion=b.completion)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})
        logged_in.get("/review/compare/", {"a": a2.pk, "b": b2.pk})
    matrix = CompareMatrix.objects.get()
    assert len(callbacks) == 1
    assert _deliver(matrix) == 3
    done = CompareMatrix.objects.get()

    # a repeated delivery (its sandbox failing, this time) stores nothing: the done matrix is kept
    _no_sandbox_here(monkeypatch)
    assert _deliver(matrix) == 0
    assert CompareMatrix.objects.get().rows == done.rows
    with django_capture_on_commit_callbacks(execute=False) as again:
        response = logged_in.get("/review/compare/", {"a": a2.pk, "b": b2.pk})

    assert again == []
    assert CompareMatrix.objects.get().finished_at == done.finished_at
    assert response.content.decode().count('data-testid="matrix-row"') == 3


@pytest.mark.parametrize("redis", [True, False], ids=["redis", "in-process"])
def test_past_the_per_minute_limit_new_matrices_wait_and_cached_ones_do_not(
    redis, logged_in, settings, monkeypatch, django_capture_on_commit_callbacks
):
    if not redis:
        settings.REDIS_URL = ""
    settings.TRIAD_COMPARE_PER_MIN = 2
    # Half a second past mid-minute, in a minute no other test (or earlier run of this one) counted in.
    minute = 10**7 + uuid.uuid4().int % 10**7
    monkeypatch.setattr("runs.ratelimit.time.time", lambda: minute * 60 + 30.5)
    pairs = [_pair(b=f"    return a + b + {k} - {k}\n") for k in range(3)]

    with django_capture_on_commit_callbacks(execute=False):
        first, second, third = (logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk}) for a, b in pairs)
        poll = _poll(logged_in, *pairs[2])
        cached = logged_in.get("/review/compare/", {"a": pairs[0][0].pk, "b": pairs[0][1].pk})

    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert b'data-status="pending"' in second.content
    html = third.content.decode()
    assert 'data-testid="code-a"' in html  # the code still shows
    assert "Retrying in 30 s" in html and 'hx-trigger="every 30s"' in html
    assert (poll.status_code, poll["Retry-After"]) == (429, "30")
    assert CompareMatrix.objects.count() == 2  # nothing queued for the third
    assert cached.status_code == 200 and b'data-status="pending"' in cached.content  # free


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_cannot_be_reached_shows_an_error_not_a_500(logged_in, monkeypatch):
    from controlplane.celery import app
    from tests.processes import free_port

    _no_sandbox_here(monkeypatch)
    # Celery reads this at connection time; nothing listens there.
    monkeypatch.setenv("CELERY_BROKER_WRITE_URL", f"redis://127.0.0.1:{free_port()}/1")
    monkeypatch.setattr(app, "_pool", None)  # connections are made again, to that URL
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    a, b = _pair()

    response = logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})

    assert response.status_code == 200
    assert 'data-status="failed"' in response.content.decode()
    assert ENQUEUE_FAILED in response.content.decode()
    assert CompareMatrix.objects.get().status == MatrixStatus.FAILED


def test_a_sandbox_that_refuses_fails_the_matrix_with_its_reason(
    monkeypatch, django_capture_on_commit_callbacks, eager
):
    a, b = _pair()
    with django_capture_on_commit_callbacks(execute=False):
        c = review_generations_compare(a=CompareSide(generation_id=a.pk), b=CompareSide(generation_id=b.pk))
    monkeypatch.setenv("TRIAD_SANDBOX_BACKEND", "none-such")

    assert _deliver(c.matrix) == 0

    c.matrix.refresh_from_db()
    assert c.matrix.status == MatrixStatus.FAILED
    assert "TRIAD_SANDBOX_BACKEND" in c.matrix.error


def test_a_failed_matrix_is_retried_by_a_reload_never_by_the_pages_polling(
    logged_in, monkeypatch, django_capture_on_commit_callbacks, eager
):
    a, b = _pair()
    with django_capture_on_commit_callbacks(execute=False):
        logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})
    monkeypatch.setenv("TRIAD_SANDBOX_BACKEND", "none-such")
    _deliver(CompareMatrix.objects.get())

    with django_capture_on_commit_callbacks(execute=False) as polled:
        poll = _poll(logged_in, a, b)
    with django_capture_on_commit_callbacks(execute=False) as reloaded:
        reload = logged_in.get("/review/compare/", {"a": a.pk, "b": b.pk})

    assert poll.status_code == 200 and polled == []
    assert 'data-status="failed"' in poll.content.decode() and "hx-trigger" not in poll.content.decode()
    assert len(reloaded) == 1 and 'data-status="pending"' in reload.content.decode()
    assert CompareMatrix.objects.get().status == MatrixStatus.PENDING


def test_the_matrix_task_goes_to_the_sandbox_queue_and_its_record_to_control(settings):
    from controlplane.celery import app

    assert (
        app.amqp.router.route({}, review_compare_matrix_task.name)["queue"].name
        == settings.TRIAD_SANDBOX_QUEUE
    )
    assert (
        app.amqp.router.route({}, "review.compare_matrix_record")["queue"].name
        == settings.TRIAD_CONTROL_QUEUE
    )


def test_generations_of_different_problems_are_not_compared():
    a, b = GenerationFactory(problem_id="X/1"), GenerationFactory(problem_id="X/2")

    c = review_generations_compare(a=CompareSide(generation_id=a.pk), b=CompareSide(generation_id=b.pk))

    assert c.error == "The two generations solve different problems."
    assert c.matrix is None
    assert not CompareMatrix.objects.exists()


def test_compare_page_without_two_sides_asks_for_them(logged_in):
    response = logged_in.get("/review/compare/", {"a": 1})

    assert response.status_code == 200
    assert response.context["c"] is None
    assert b"Generation B" in response.content


def test_compare_page_with_unknown_generation_is_not_found(logged_in):
    response = logged_in.get("/review/compare/", {"a": 999999, "b": 999998})

    assert response.status_code == 404
    assert b"Generation A not found." in response.content


def test_another_teams_generation_is_not_found_and_queues_nothing(
    logged_in, django_capture_on_commit_callbacks
):
    from tests.factories import TeamFactory, UserFactory

    theirs = UserFactory(membership__team=TeamFactory(name="beta"))
    problem = ProblemFactory()
    mine = GenerationFactory(run=RunFactory(dataset_version=problem.version), problem_id=problem.task_id)
    other = GenerationFactory(
        run=RunFactory(dataset_version=problem.version, created_by=theirs), problem_id=problem.task_id
    )

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = logged_in.get("/review/compare/", {"a": mine.pk, "b": other.pk})

    assert response.status_code == 404
    assert callbacks == [] and not CompareMatrix.objects.exists()
