"""The trusted harness that runs inside the isolated child process.

The parent never imports this module: ``backends.py`` compiles it once and sends the code object,
marshalled with the item's payload, on the stdin of
``python -S -s -B -P -c <BOOTSTRAP> <verdict_fd>``. It imports only modules built into the
interpreter (or tiny C extensions) so that a child starts in a few milliseconds: no ``ast``,
``json`` or ``traceback``.

Protocol: the bootstrap reads stdin to its end and runs this code with ``_PAYLOAD`` set. The runner
points stdin at /dev/null, lowers its rlimits, optionally drops to an unprivileged uid, writes
``started:<nonce>:<tests_total>`` to the verdict fd, runs the candidate and then the tests, and
writes one JSON verdict line carrying the nonce. The candidate's exit code and output never decide
the verdict; a child that exits without a verdict line is a ``crash`` (or a ``sandbox_error`` if it
never started).
"""

from __future__ import annotations

import _ast
import builtins
import marshal
import os
import resource
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any

_ONLY_AST = 0x400  # ast.PyCF_ONLY_AST, without importing ast
_MAX_DEPTH = 200
_SCALARS = (int, float, complex, str, bytes, bool, type(None))
_write = os.write
_exit = os._exit
_builtins_snapshot = dict(builtins.__dict__)


class _NotPlain(BaseException):
    """A candidate returned something other than plain builtin data."""


def _restore_builtins() -> None:
    d = builtins.__dict__
    d.clear()
    d.update(_builtins_snapshot)


def _plain(x: Any, depth: int = 0) -> Any:
    """Return a deep copy of x made of exact builtin types, or raise _NotPlain.

    Subclasses of builtin types (namedtuple, defaultdict, IntEnum…) are converted to their base;
    anything else (an object whose __eq__ always returns True, a generator…) is rejected. The copy is
    re-checked, so whatever the conversion runs, the tests only ever compare builtin values.
    """
    t = type(x)
    if t in _SCALARS:
        return x
    if depth > _MAX_DEPTH:
        raise _NotPlain("nested too deeply")
    d = depth + 1
    if t is list:
        return [_plain(v, d) for v in x]
    if t is tuple:
        return tuple([_plain(v, d) for v in x])
    if t is set:
        return {_plain(v, d) for v in x}
    if t is frozenset:
        return frozenset([_plain(v, d) for v in x])
    if t is dict:
        return {_plain(k, d): _plain(v, d) for k, v in x.items()}
    for base in (int, float, complex, str, bytes, list, tuple, set, frozenset, dict):
        if issubclass(t, base):
            try:
                converted = base(x)
            except Exception:
                break
            if type(converted) is base:
                return _plain(converted, d)
            break
    raise _NotPlain(getattr(t, "__name__", "?"))


class _State:
    def __init__(self) -> None:
        self.not_plain = ""
        self.hits: set[int] = set()


def _wrap(fn: Callable[..., Any], state: _State) -> Callable[..., Any]:
    def candidate(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        _restore_builtins()
        try:
            return _plain(result)
        except _NotPlain as e:
            state.not_plain = state.not_plain or str(e)
            raise

    candidate.__name__ = candidate.__qualname__ = str(getattr(fn, "__name__", "candidate"))
    candidate.__doc__ = getattr(fn, "__doc__", None)
    return candidate


def _segment(lines: list[str], node: Any) -> str:
    return "\n".join(lines[node.lineno - 1 : node.end_lineno]).strip()


def _instrument(node: Any, index: dict[int, tuple[int, str]], lines: list[str]) -> None:
    """Insert ``__triad_hit__(k)`` after every assert below node; index maps line -> (k, source)."""
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            new: list[Any] = []
            for child in value:
                if isinstance(child, _ast.AST):
                    _instrument(child, index, lines)
                new.append(child)
                if type(child) is _ast.Assert:
                    k = len({v[0] for v in index.values()})
                    for ln in range(child.lineno, (child.end_lineno or child.lineno) + 1):
                        index[ln] = (k, _segment(lines, child))
                    loc: Any = {
                        "lineno": child.lineno,
                        "col_offset": child.col_offset,
                        "end_lineno": child.end_lineno,
                        "end_col_offset": child.end_col_offset,
                    }
                    func = _ast.Name(id="__triad_hit__", ctx=_ast.Load(), **loc)
                    call = _ast.Call(func=func, args=[_ast.Constant(value=k, **loc)], keywords=[], **loc)
                    new.append(_ast.Expr(value=call, **loc))
            setattr(node, field, new)
        elif isinstance(value, _ast.AST):
            _instrument(value, index, lines)


def _tests_lineno(tb: TracebackType | None) -> int:
    lineno = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<tests>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


def _describe(e: BaseException, sources: dict[str, list[str]]) -> tuple[str, str]:
    """(exception type name, traceback text) without the traceback module."""
    try:
        name = str(type(e).__name__)
    except Exception:
        name = "BaseException"
    try:
        msg = str(e)
    except Exception:
        msg = "<unprintable>"
    out = ["Traceback (most recent call last):"]
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        if filename not in ("<string>", "<runner>"):  # the bootstrap's and the runner's frames
            out.append(f'  File "{filename}", line {tb.tb_lineno}, in {code.co_name}')
            src = sources.get(filename)
            if src and 0 < tb.tb_lineno <= len(src):
                out.append("    " + src[tb.tb_lineno - 1].strip())
        tb = tb.tb_next
    out.append(f"{name}: {msg}" if msg else name)
    return name, "\n".join(out)


def _verdict(
    error_class: str,
    passed: int,
    total: int,
    exception_type: str = "",
    failing_test: str = "",
    traceback: str = "",
) -> dict[str, Any]:
    return {
        "error_class": error_class,
        "tests_passed": passed,
        "tests_total": total,
        "exception_type": exception_type,
        "failing_test": failing_test,
        "traceback": traceback,
    }


def _from_exception(
    e: BaseException,
    state: _State,
    sources: dict[str, list[str]],
    in_tests: bool,
    passed: int,
    total: int,
    failing_test: str = "",
) -> dict[str, Any]:
    if state.not_plain:
        return _verdict(
            "wrong_answer",
            passed,
            total,
            "NonPlainReturn",
            failing_test,
            f"candidate returned a non-plain value of type {state.not_plain}",
        )
    name, text = _describe(e, sources)
    if isinstance(e, MemoryError):
        cls = "memory_limit"
    elif in_tests and isinstance(e, AssertionError):
        cls = "wrong_answer"
    else:
        cls = "runtime_error"
    return _verdict(cls, passed, total, name, failing_test, text)


def _evaluate(code: str, tests: str, entry_point: str, started: Callable[[int], None]) -> dict[str, Any]:
    # Prepare the tests (trusted data) before any candidate code runs.
    test_lines = tests.splitlines()
    try:
        tree: Any = compile(tests, "<tests>", "exec", _ONLY_AST)
    except (SyntaxError, ValueError) as e:
        return _verdict("sandbox_error", 0, 0, "SyntaxError", "", f"tests do not compile: {e}")
    checks = [n for n in tree.body if type(n) is _ast.FunctionDef and n.name == "check"]
    index: dict[int, tuple[int, str]] = {}
    units: list[tuple[bool, Any, str]] = []
    if checks:
        if not entry_point:
            return _verdict("sandbox_error", 0, 0, "", "", "HumanEval-style tests need entry_point")
        _instrument(checks[-1], index, test_lines)
        total = max(1, len({v[0] for v in index.values()}))
        tests_code = compile(tree, "<tests>", "exec")
    else:
        for stmt in tree.body:
            module = _ast.Module(body=[stmt], type_ignores=[])
            unit = compile(module, "<tests>", "exec")
            units.append((type(stmt) is _ast.Assert, unit, _segment(test_lines, stmt)))
        total = sum(1 for u in units if u[0])
        if total == 0:
            return _verdict("sandbox_error", 0, 0, "", "", "tests contain no assert statement")

    started(total)
    sources = {"<candidate>": code.splitlines(), "<tests>": test_lines}
    state = _State()
    try:
        code_obj = compile(code, "<candidate>", "exec")
    except (SyntaxError, ValueError) as e:
        name = type(e).__name__
        return _verdict("syntax_error", 0, total, name, "", f"{name}: {e}")
    except MemoryError as e:
        return _verdict("memory_limit", 0, total, "MemoryError", "", str(e))
    except RecursionError as e:
        return _verdict("syntax_error", 0, total, "RecursionError", "", str(e))

    ns: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
    try:
        exec(code_obj, ns)  # noqa: S102 — running the candidate is the point
    except BaseException as e:  # SystemExit and friends are the candidate's too
        _restore_builtins()
        return _from_exception(e, state, sources, False, 0, total)
    _restore_builtins()

    # The tests run in a fresh namespace: the candidate's names, functions wrapped.
    test_ns: dict[str, Any] = {"__name__": "__tests__", "__builtins__": builtins}
    function_type = type(_restore_builtins)
    for key, value in list(ns.items()):
        if not (key.startswith("__") and key.endswith("__")):
            test_ns[key] = _wrap(value, state) if type(value) is function_type else value
    test_ns["__triad_hit__"] = state.hits.add

    if checks:
        try:
            exec(tests_code, test_ns)  # noqa: S102
            if entry_point not in ns or not callable(ns[entry_point]):
                raise NameError(f"entry point {entry_point!r} is not defined")
            test_ns["check"](_wrap(ns[entry_point], state))
        except BaseException as e:
            _restore_builtins()
            failing = index.get(_tests_lineno(e.__traceback__), (-1, ""))
            ok = len(state.hits - {failing[0]})
            return _from_exception(e, state, sources, True, min(ok, total), total, failing[1])
        _restore_builtins()
        if state.not_plain:
            return _from_exception(RuntimeError(), state, sources, True, 0, total)
        return _verdict("passed", total, total)

    passed = 0
    first: dict[str, Any] | None = None
    for is_assert, unit, source in units:
        try:
            exec(unit, test_ns)  # noqa: S102
        except BaseException as e:
            _restore_builtins()
            if first is None:
                first = _from_exception(e, state, sources, True, 0, total, source)
            if not is_assert:
                break
            continue
        _restore_builtins()
        if is_assert:
            passed += 1
    if first is None and state.not_plain:
        first = _from_exception(RuntimeError(), state, sources, True, 0, total)
    if first is not None:
        first["tests_passed"] = passed
        return first
    return _verdict("passed", passed, total)


def _json(value: Any) -> str:
    """A tiny JSON encoder for the verdict (str, int, bool values), ASCII only."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(_json(str(k)) + ":" + _json(v) for k, v in value.items()) + "}"
    s = str(value)
    if s.isascii() and s.isprintable() and '"' not in s and "\\" not in s:
        return '"' + s + '"'
    out = ['"']
    for ch in s:
        o = ord(ch)
        if 0x20 <= o < 0x7F and ch != '"' and ch != "\\":
            out.append(ch)
        elif o > 0xFFFF:
            o -= 0x10000
            out.append(f"\\u{0xD800 + (o >> 10):04x}\\u{0xDC00 + (o & 0x3FF):04x}")
        else:
            out.append(f"\\u{o:04x}")
    out.append('"')
    return "".join(out)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[_write(fd, data) :]


def _set_limits(timeout_s: float, memory_mb: int) -> None:
    cpu = int(timeout_s) + 1
    for limit, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20)),
        (resource.RLIMIT_NPROC, (64, 64)),
        (resource.RLIMIT_FSIZE, (1 << 20, 1 << 20)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (256, 256)),
    ):
        resource.setrlimit(limit, value)


def run_item(payload: tuple[Any, ...], vfd: int) -> None:
    """Run one item in this process and write its verdict on vfd; never returns."""
    nonce, code, tests, entry_point, timeout_s, memory_mb, max_text, uid, gid = payload
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    _set_limits(timeout_s, memory_mb)
    if uid >= 0:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    def started(total: int) -> None:
        _write_all(vfd, f"started:{nonce}:{total}\n".encode())

    verdict = _evaluate(code, tests, entry_point, started)
    _restore_builtins()
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:  # a broken stream must not lose the verdict
            pass
    verdict["traceback"] = verdict["traceback"][:max_text]
    verdict["failing_test"] = verdict["failing_test"][:max_text]
    verdict["nonce"] = nonce
    _write_all(vfd, b"\n" + _json(verdict).encode() + b"\n")
    _exit(0)


def _read_to_end(fd: int) -> bytes:
    b = bytearray()
    while c := os.read(fd, 1 << 16):
        b += c
    return bytes(b)


def _kill_leftovers(uid: int) -> bool:
    """As uid (a helper child), SIGKILL every process of that uid, then empty /tmp. True when clean."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            clean = False
            for _ in range(2000):
                os.kill(-1, 9)  # every process this uid may signal but us: only the item's
                if not _others_alive(uid):
                    clean = True
                    break
                os.sched_yield()
            _wipe("/tmp")  # noqa: S108 — the sandbox's own /tmp
            _exit(0 if clean else 1)
        except BaseException:
            _exit(2)
    _, status = os.waitpid(pid, 0)
    return status == 0


def _others_alive(uid: int) -> bool:
    """Is any process of uid other than us still running (not a zombie) in this pid namespace?"""
    me = str(os.getpid())
    for name in os.listdir("/proc"):
        if not name.isdigit() or name == me:
            continue
        try:
            if os.stat("/proc/" + name).st_uid != uid:
                continue
            with open("/proc/" + name + "/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            return True
    return False


def _wipe(top: str) -> None:
    for name in os.listdir(top):
        path = top + "/" + name
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
                _wipe(path)
                os.rmdir(path)
            else:
                os.unlink(path)
        except OSError:
            pass


def zygote(ctrl: int, uid: int) -> None:
    """Warm mode: wait on the control socket for one item at a time, fork a fresh child for it.

    Each message carries four descriptors (payload in, stdout, stderr, verdict), made by the parent
    for that item only. The child closes the control socket, takes them as 0, 1, 2 and 3, starts a
    new session and runs the item as the slot uid. Afterwards every process of that uid in this pid
    namespace is killed and /tmp emptied before "done <wait status>" goes back; then the next item.
    Only used under bwrap as root (own pid namespace, slot uid distinct from ours).
    """
    import socket

    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    sock = socket.socket(fileno=ctrl)
    while True:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 64, 4)
        if not msg or len(fds) != 4:
            _exit(0)
        pid = os.fork()
        if pid == 0:
            sock.close()
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
            for fd in fds:
                if fd > 3:
                    os.close(fd)
            os.setsid()
            item = _read_to_end(0)
            payload = tuple(marshal.loads(item))  # noqa: S302 — written by our trusted parent
            run_item((*payload[:7], uid, uid), 3)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        if not _kill_leftovers(uid):
            _exit(3)
        sock.sendall(b"done %d\n" % status)


def main() -> None:
    payload = globals()["_PAYLOAD"]  # set by the bootstrap (backends.BOOTSTRAP)
    if payload[0] == "zygote":
        zygote(int(sys.argv[1]), int(payload[1]))
    else:
        run_item(payload, int(sys.argv[1]))


if __name__ == "__main__":
    main()
