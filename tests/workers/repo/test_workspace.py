import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.workers.repo.sample_repo import BASE_FILES, snapshot_of
from workers.repo.workspace import SnapshotError, Workspace, WorkspaceLimits, check_snapshot, make_snapshot
from workers.sandbox.batch import bwrap_available
from workers.sandbox.workspace_exec import PYTHON, run_in_workspace


@pytest.fixture(autouse=True)
def own_tempdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Workspaces go under this test's own directory, so that what is left behind can be counted."""
    top = tmp_path / "tmp"
    top.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(top))
    return top


def _tar(*members: tarfile.TarInfo, data: bytes = b"x") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def _file(name: str, size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    return info


def test_a_snapshot_extracts_into_a_fresh_directory_removed_on_exit(own_tempdir: Path) -> None:
    with Workspace.create(snapshot_of(BASE_FILES)) as ws:
        assert (ws.root / "calc/ops.py").read_text() == BASE_FILES["calc/ops.py"]
        assert ws.files == len(BASE_FILES)
        root = ws.root
    assert not root.exists()
    assert list(own_tempdir.iterdir()) == []


def test_it_is_removed_when_the_body_raises(own_tempdir: Path) -> None:
    with pytest.raises(RuntimeError), Workspace.create(snapshot_of(BASE_FILES)):
        raise RuntimeError("boom")
    assert list(own_tempdir.iterdir()) == []


def test_leading_dot_slash_is_accepted() -> None:
    with Workspace.create(_tar(_file("./pkg/a.py"))) as ws:
        assert (ws.root / "pkg/a.py").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("member", "says"),
    [
        (_file("/etc/evil"), "absolute"),
        (_file("../evil"), "outside"),
        (_file("pkg/../../evil"), "outside"),
        (_link("pkg/link", "/etc/passwd"), "a link"),
        (_link("pkg/hard", "README.md", tarfile.LNKTYPE), "a link"),
        (_device("pkg/null"), "not a regular file"),
    ],
)
def test_unsafe_members_are_refused_naming_them_and_nothing_is_left(
    member: tarfile.TarInfo, says: str, own_tempdir: Path
) -> None:
    with pytest.raises(SnapshotError) as err:
        Workspace.create(_tar(_file("ok.py"), member))
    assert repr(member.name) in str(err.value) and says in str(err.value)
    assert list(own_tempdir.iterdir()) == []
    with pytest.raises(SnapshotError, match=says):  # an importer's check, writing nothing
        check_snapshot(_tar(_file("ok.py"), member))


def test_check_snapshot_counts_the_files_of_a_good_one() -> None:
    assert check_snapshot(snapshot_of(BASE_FILES)) == len(BASE_FILES)


def test_limits_on_files_and_bytes_are_enforced() -> None:
    many = _tar(*(_file(f"f{i}.py") for i in range(5)))
    with pytest.raises(SnapshotError, match="more than 4 files"):
        Workspace.create(many, WorkspaceLimits(max_files=4))
    big = _tar(_file("big.bin", 100), data=b"x" * 100)
    with pytest.raises(SnapshotError, match=r"'big\.bin': 100 bytes; at most 99"):
        Workspace.create(big, WorkspaceLimits(max_file_bytes=99))
    with pytest.raises(SnapshotError, match="pass 250 bytes in all"):
        Workspace.create(
            _tar(*(_file(f"f{i}", 100) for i in range(3)), data=b"x" * 100), WorkspaceLimits(max_bytes=250)
        )


def test_garbage_is_refused_as_not_a_tarball() -> None:
    import gzip

    with pytest.raises(SnapshotError, match=r"not a readable \.tar\.gz"):
        Workspace.create(gzip.compress(b"not a tar at all" * 100))


def test_make_snapshot_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    a = snapshot_of(BASE_FILES)
    assert a == snapshot_of(dict(reversed(BASE_FILES.items())))
    with Workspace.create(a) as ws:
        (ws.root / "calc/__pycache__").mkdir()
        (ws.root / "calc/__pycache__/ops.cpython-311.pyc").write_bytes(b"\0")
        assert make_snapshot(ws.root) == a


@pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")
def test_it_is_removed_even_when_the_sandboxed_code_locked_it(own_tempdir: Path) -> None:
    code = (
        "import os\n"
        "os.makedirs('locked/inner')\n"
        "open('locked/inner/f', 'w').write('x')\n"
        "os.chmod('locked/inner', 0)\n"
        "os.chmod('locked', 0o500)\n"
    )
    with Workspace.create(snapshot_of(BASE_FILES)) as ws:
        result = run_in_workspace(ws.root, [PYTHON, "-c", code], timeout_s=20)
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(os.lstat(ws.root / "locked").st_mode) == 0o500
    assert list(own_tempdir.iterdir()) == []
