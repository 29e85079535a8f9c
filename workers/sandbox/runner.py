"""The trusted harness inside the sandbox: a judge process and a candidate process per item.

``payload.py`` compiles this module once and sends the code object (docker: the source) on the
stdin of ``python -S -s -B -P -c <BOOTSTRAP> <verdict_fd>``. Inside the sandbox it imports nothing
that the interpreter's start-up did not (``posix``, not ``os``; ``resource`` straight from its
file), so that a child starts in a few milliseconds. The parent imports it too, for
``prepare_tests`` and ``compile_candidate``: it compiles the tests and the candidate (the same
interpreter) so that no sandbox has to.

Stdin carries two parts. The first (a 4-byte length, then ``marshal((runner, public))``) is what
the candidate may know: its code, the limits, the slot uid. The second (``marshal(secret)`` to the
end) is what it must not: the nonce that authenticates the verdict, the tests, the entry point.

``run_item`` lowers the rlimits and forks before it reads the secret part. The child (the
*candidate* process) points stdin at /dev/null, closes the verdict descriptor, drops to the slot's
uid, waits for the judge's go, runs the generated code and then serves calls on a pair of pipes.
The parent (the *judge*) reads the secret, writes ``started:<nonce>:<tests_total>`` on the verdict
descriptor, runs the tests in its own interpreter and calls the candidate's functions across the
pipes, and finally writes one JSON verdict line carrying the nonce. Only plain data crosses the
pipes, in a small tagged encoding that the judge parses itself (never ``marshal`` or ``pickle``
of the candidate's bytes): ints, floats, complex, str, bytes, bool, None, and lists, tuples, sets,
frozensets and dicts of them. A candidate object that is not plain data (an instance of a class
the tests construct, a method) stays in the candidate process and is seen by the tests as an
opaque handle that can be called, have attributes read and be passed back, but that refuses to be
compared, hashed, iterated or tested for truth (``NonPlainReturn``). A candidate function that
returns anything else than plain data is ``wrong_answer`` (``NonPlainReturn``).

The candidate process never holds the nonce, the tests or the verdict descriptor, so nothing it
does (walking frames, ``gc``, reading its own memory, patching modules, exiting) can forge a
verdict; the judge's exit code and the candidate's output never decide anything either.
See docs/sandbox.md.
"""

from __future__ import annotations

import builtins
import marshal
import posix
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType
    from typing import Any

_ONLY_AST = 0x400  # ast.PyCF_ONLY_AST, without importing ast
_MAX_DEPTH = 200
_GLOBAL_ITEMS = 10_000  # a module global with more items than this is passed as a handle
_write = posix.write
_read = posix.read
_exit = posix._exit
_builtins_snapshot = dict(builtins.__dict__)
_ModuleType = type(sys)
_BASES = (int, float, complex, str, bytes, list, tuple, set, frozenset, dict)
_PLAIN_TYPES = frozenset(_BASES) | {bool, type(None)}

# Message kinds (the first byte of a message body).
_GO, _CALL, _GETATTR, _RETURN, _RAISE, _BYE = b"G", b"C", b"A", b"R", b"X", b"Q"
_SYNTAX, _READY, _NOT_PLAIN, _CALLBACK, _ACK = b"S", b"Y", b"P", b"K", b"B"


class _NotPlain(BaseException):
    """A candidate value that is not plain data was used as if it were."""


class _Gone(BaseException):
    """The other process closed its end of the pipe (exited, died or was killed)."""


class _BadMessage(BaseException):
    """The candidate process sent something that is not a well-formed message."""


class _Unsupported(BaseException):
    """The tests passed something to the candidate that cannot cross the process boundary."""


# --- the wire -------------------------------------------------------------------------------------
# A message is a 4-byte big-endian length, one kind byte, then one encoded value:
#   N T F                       None True False
#   i<hex>;  f<float.hex>;  c<real>;<imag>;
#   s<n>:<n bytes of UTF-8>  b<n>:<n bytes>
#   l t S z <count>:<items>     list, tuple, set, frozenset;  d<count>:<key><value>...
#   h<ref>;                     an object that stays in the candidate process (a handle)
#   k<ref>;  n<name>;  r<a>;<b>;<c>;   judge to candidate only: a callable of the tests (called
#                               back across the pipe), a builtin by name, a range
# Sizes and counts are hexadecimal.

_SEQ_TAGS: dict[type, bytes] = {list: b"l", tuple: b"t", set: b"S", frozenset: b"z"}


def _enc(x: Any, buf: bytearray, other: Callable[[Any, bytearray, int], None], depth: int) -> None:
    t = type(x)
    if t is int:
        buf += b"i%x;" % x
    elif t is str:
        data = x.encode("utf-8", "surrogatepass")
        buf += b"s%x:" % len(data)
        buf += data
    elif x is None:
        buf += b"N"
    elif t is bool:
        buf += b"T" if x else b"F"
    elif t is float:
        buf += b"f" + x.hex().encode() + b";"
    elif t in _SEQ_TAGS:
        if depth >= _MAX_DEPTH:
            raise _NotPlain("nested too deeply")
        buf += _SEQ_TAGS[t] + b"%x:" % len(x)
        for v in x:
            _enc(v, buf, other, depth + 1)
    elif t is dict:
        if depth >= _MAX_DEPTH:
            raise _NotPlain("nested too deeply")
        buf += b"d%x:" % len(x)
        for k, v in x.items():
            _enc(k, buf, other, depth + 1)
            _enc(v, buf, other, depth + 1)
    elif t is bytes:
        buf += b"b%x:" % len(x)
        buf += x
    elif t is complex:
        buf += b"c" + x.real.hex().encode() + b";" + x.imag.hex().encode() + b";"
    else:
        other(x, buf, depth)


def _encode(x: Any, other: Callable[[Any, bytearray, int], None]) -> bytearray:
    buf = bytearray()
    _enc(x, buf, other, 0)
    return buf


def _small(x: Any, budget: int) -> bool:
    """Does x hold at most budget items (containers counted with their contents)?"""
    stack = [x]
    while stack:
        v = stack.pop()
        t = type(v)
        if t in _SEQ_TAGS or t is dict:
            budget -= len(v)
            if budget < 0:
                return False
            stack.extend(v.items() if t is dict else v)
    return True


def _convert(x: Any) -> Any:
    """A subclass of a plain type (namedtuple, IntEnum, defaultdict...) as its exact base type."""
    t = type(x)
    for base in _BASES:
        if issubclass(t, base):
            try:
                converted = base(x)
            except Exception:
                break
            if type(converted) is base:
                return converted
            break
    raise _NotPlain(str(getattr(t, "__name__", "?")))


class _Decoder:
    """Parses one encoded value; ``refs(tag, decoder)`` handles the side-specific tags h k n r."""

    __slots__ = ("data", "pos", "refs")

    def __init__(self, data: bytes, pos: int, refs: Callable[[int, _Decoder], Any]) -> None:
        self.data = data
        self.pos = pos
        self.refs = refs

    def until(self, stop: int) -> bytes:
        end = self.data.index(stop, self.pos)
        chunk = self.data[self.pos : end]
        self.pos = end + 1
        return chunk

    def number(self) -> int:
        return int(self.until(59), 16)  # up to ';'

    def size(self) -> int:
        n = int(self.until(58), 16)  # up to ':'
        if n < 0 or n > len(self.data) - self.pos:
            raise ValueError("size out of range")
        return n

    def raw(self) -> bytes:
        n = self.size()
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def value(self, depth: int = 0) -> Any:
        tag = self.data[self.pos]
        self.pos += 1
        if tag == 105:  # i
            return self.number()
        if tag == 115:  # s
            return self.raw().decode("utf-8", "surrogatepass")
        if tag == 78:  # N
            return None
        if tag == 84:  # T
            return True
        if tag == 70:  # F
            return False
        if tag == 102:  # f
            return float.fromhex(self.until(59).decode("ascii"))
        if tag == 98:  # b
            return self.raw()
        if tag == 99:  # c
            return complex(
                float.fromhex(self.until(59).decode("ascii")), float.fromhex(self.until(59).decode("ascii"))
            )
        if tag in (104, 107, 110, 114):  # h k n r
            return self.refs(tag, self)
        if depth >= _MAX_DEPTH:
            raise ValueError("nested too deeply")
        d = depth + 1
        if tag == 100:  # d
            out: dict[Any, Any] = {}
            for _ in range(self.size()):
                k = self.value(d)
                out[k] = self.value(d)
            return out
        if tag == 108:  # l
            return [self.value(d) for _ in range(self.size())]
        if tag == 116:  # t
            return tuple([self.value(d) for _ in range(self.size())])
        if tag == 83:  # S
            return {self.value(d) for _ in range(self.size())}
        if tag == 122:  # z
            return frozenset([self.value(d) for _ in range(self.size())])
        raise ValueError(f"unknown tag {tag}")


class _Channel:
    """Length-prefixed messages over a pair of pipes."""

    __slots__ = ("limit", "rfd", "wfd")

    def __init__(self, rfd: int, wfd: int, limit: int) -> None:
        self.rfd = rfd
        self.wfd = wfd
        self.limit = limit

    def send(self, kind: bytes, body: bytes | bytearray = b"") -> None:
        _write_all(self.wfd, (len(body) + 1).to_bytes(4, "big") + kind + body)

    def recv(self) -> tuple[bytes, bytes]:
        n = int.from_bytes(self._exactly(4), "big")
        if not 0 < n <= self.limit:
            raise _BadMessage(f"a message of {n} bytes")
        data = self._exactly(n)
        return data[:1], data

    def _exactly(self, n: int) -> bytes:
        chunk = _read(self.rfd, n)
        if len(chunk) == n:
            return chunk
        buf = bytearray(chunk)
        while len(buf) < n:
            if not chunk:
                raise _Gone()
            chunk = _read(self.rfd, min(n - len(buf), 1 << 20))
            buf += chunk
        return bytes(buf)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[_write(fd, view) :]


# --- tracebacks, without the traceback module -----------------------------------------------------


def _frames(tb: TracebackType | None, sources: dict[str, list[str]]) -> list[str]:
    out = []
    while tb is not None:
        code = tb.tb_frame.f_code
        filename = code.co_filename
        if filename not in ("<string>", "<runner>"):  # the bootstrap's and the runner's frames
            out.append(f'  File "{filename}", line {tb.tb_lineno}, in {code.co_name}')
            src = sources.get(filename)
            if src and 0 < tb.tb_lineno <= len(src):
                out.append("    " + src[tb.tb_lineno - 1].strip())
        tb = tb.tb_next
    return out


def _exception_info(e: BaseException, sources: dict[str, list[str]]) -> tuple[Any, ...]:
    """(names of the exception's classes, most derived first; its frames; its last line; its
    args when they are plain data, else None)."""
    try:
        names = [str(c.__name__) for c in type(e).__mro__]
    except Exception:
        names = ["BaseException"]
    try:
        msg = str(e)
    except Exception:
        msg = "<unprintable>"
    try:
        frames = "\n".join(_frames(e.__traceback__, sources))
    except Exception:
        frames = ""
    try:
        _encode(e.args, _no_other)
        args: tuple[Any, ...] | None = tuple(e.args)
    except BaseException:
        args = None
    return names, frames, f"{names[0]}: {msg}" if msg else names[0], args


def _no_other(x: Any, buf: bytearray, depth: int) -> None:
    raise _NotPlain(type(x).__name__)


def _checked_exception(value: Any) -> tuple[list[str], str, str, tuple[Any, ...] | None]:
    names, frames, last, args = value
    if not (type(names) is list and names and all(type(n) is str for n in names)):
        raise ValueError("not an exception")
    if type(frames) is not str or type(last) is not str or not (args is None or type(args) is tuple):
        raise ValueError("not an exception")
    return names, frames, last, args


def _rebuild(names: list[str], frames: str, last: str, args: tuple[Any, ...] | None) -> BaseException:
    """An exception raised in the other process, as the nearest builtin exception class.

    The class keeps the remote name (``MyError``) on top of the first builtin base in its MRO, so
    that ``except ValueError`` in the tests catches a candidate's ``ValueError`` subclass; it is
    made from the remote args when they were plain data, else from the message.
    """
    base: type[BaseException] = Exception
    for name in names:
        c = _builtins_snapshot.get(name)
        if type(c) is type and issubclass(c, BaseException):
            base = c
            break
    name = names[0] if names and type(names[0]) is str else "Exception"
    cls = base if base.__name__ == name else type(name, (base,), {})
    message = last.split(": ", 1)[1] if ": " in last else ""
    try:
        error: BaseException = cls(*args) if args is not None else cls(message)
    except Exception:  # constructors that want other arguments (UnicodeDecodeError...)
        error = type(name, (Exception,), {})(message)
    error.__dict__["_triad_remote"] = (names, frames, last)
    return error


def _describe(e: BaseException, sources: dict[str, list[str]]) -> tuple[str, str]:
    """(exception type name, traceback text), the candidate's frames included."""
    names, frames, last, _ = _exception_info(e, sources)
    out = ["Traceback (most recent call last):", frames] if frames else ["Traceback (most recent call last):"]
    remote = getattr(e, "__dict__", {}).get("_triad_remote")
    if remote is not None:
        names, remote_frames, last = remote
        if remote_frames:
            out.append(remote_frames)
    out.append(last)
    return names[0], "\n".join(out)


# --- the candidate process ------------------------------------------------------------------------


def compile_candidate(code: str) -> tuple[Any, tuple[str, str, str] | None]:
    """(code object, None), or (None, (error class, exception type, message)) when it does not
    compile. The parent calls this too: the first ``compile`` in a process builds every AST type
    (about a millisecond), so the parent compiles and sends the code object (see payload.py)."""
    try:
        return compile(code, "<candidate>", "exec", dont_inherit=True, optimize=0), None
    except (SyntaxError, ValueError, RecursionError) as e:
        name = type(e).__name__
        return None, ("syntax_error", name, f"{name}: {e}")
    except MemoryError as e:
        return None, ("memory_limit", "MemoryError", f"MemoryError: {e}")


class _Candidate:
    """Runs the generated code, then serves the judge's calls until told to stop."""

    def __init__(self, ch: _Channel, code: str, compiled: bytes | None) -> None:
        self.ch = ch
        self.code = code
        self.compiled = compiled
        self.sources = {"<candidate>": code.splitlines()}
        self.objects: list[Any] = []

    def main(self) -> None:
        ch = self.ch
        kind, _ = ch.recv()  # the go: the judge has read its secret and closed its stdin
        if kind != _GO:
            return
        ns: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
        if self.compiled is not None:  # by the parent, from this source
            code_obj, failed = marshal.loads(self.compiled), None  # noqa: S302 — from our parent
        else:
            code_obj, failed = compile_candidate(self.code)
        if failed is not None:
            ch.send(_SYNTAX, _encode(failed, self.other))
            self.serve(False)
            return
        try:
            exec(code_obj, ns)  # noqa: S102 — running the candidate is the point
        except BaseException as e:  # SystemExit and friends are the candidate's too
            ns.clear()  # frees what a memory bomb allocated, so the report can be written
            ch.send(_RAISE, _encode(_exception_info(e, self.sources), self.other))
            self.serve(False)
            return
        ch.send(_READY, self.names(ns))
        self.serve(False)

    def names(self, ns: dict[str, Any]) -> bytearray:
        """The module's names: (name, 0, module name) | (name, 1, value) | (name, 2, handle, callable)."""
        entries = [(k, v) for k, v in list(ns.items()) if type(k) is str and not (k[:2] == "__" == k[-2:])]
        buf = bytearray(b"l%x:" % len(entries))
        for key, value in entries:
            if type(value) is _ModuleType:
                modname = value.__dict__.get("__name__")
                _enc((key, 0, modname if type(modname) is str else ""), buf, self.other, 0)
                continue
            mark = len(buf)
            try:  # exact plain types only: a list subclass with methods stays an object here
                if not _small(value, _GLOBAL_ITEMS):
                    raise _NotPlain("too big")
                buf += b"t3:"
                _enc(key, buf, self.other, 1)
                buf += b"i1;"
                _enc(value, buf, _no_other, 1)
            except BaseException:
                del buf[mark:]
                _enc((key, 2, self.handle(value), callable(value)), buf, self.other, 0)
        return buf

    def handle(self, obj: Any) -> _Ref:
        self.objects.append(obj)
        return _Ref(len(self.objects) - 1)

    def other(self, x: Any, buf: bytearray, depth: int) -> None:
        if type(x) is _Ref:
            buf += b"h%x;" % x.ref
        else:
            _enc(_convert(x), buf, self.other, depth)

    def refs(self, tag: int, dec: _Decoder) -> Any:
        if tag == 104:  # h: one of our objects, passed back
            return self.objects[dec.number()]
        if tag == 110:  # n: a builtin
            return _builtins_snapshot[dec.until(59).decode()]
        if tag == 114:  # r: a range
            return range(dec.number(), dec.number(), dec.number())
        return self.callback(dec.number())  # k: a callable of the tests'

    def callback(self, ref: int) -> Callable[..., Any]:
        def tests_callable(*args: Any, **kwargs: Any) -> Any:
            self.ch.send(_CALLBACK, _encode((ref, args, kwargs), self.other))
            return self.serve(True)

        return tests_callable

    def serve(self, nested: bool) -> Any:
        """Answer calls; in a callback, return (or raise) the judge's answer when it comes."""
        ch = self.ch
        while True:
            try:
                kind, data = ch.recv()
            except BaseException:
                _exit(0)
            if kind == _BYE:
                _flush()
                ch.send(_ACK)
                _exit(0)
            dec = _Decoder(data, 1, self.refs)
            if kind == _CALL:
                ref, args, kwargs = dec.value()
                self.call(self.objects[ref], args, kwargs)
            elif kind == _GETATTR:
                ref, name = dec.value()
                self.call(getattr, (self.objects[ref], name), {}, True)
            elif nested and kind == _RETURN:
                return dec.value()
            elif nested and kind == _RAISE:
                raise _rebuild(*_checked_exception(dec.value()))

    def call(self, fn: Any, args: Any, kwargs: Any, handle_ok: bool = False) -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            self.ch.send(_RAISE, _encode(_exception_info(e, self.sources), self.other))
            return
        t = type(result)
        if (handle_ok or isinstance(fn, type)) and t not in _PLAIN_TYPES and not issubclass(t, _BASES):
            self.ch.send(_RETURN, b"h%x;" % self.handle(result).ref)
            return
        try:
            body = _encode(result, self.other)
        except MemoryError as e:  # a value too big to send within the memory limit
            del result
            self.ch.send(_RAISE, _encode(_exception_info(e, self.sources), self.other))
            return
        except BaseException as e:
            name = getattr(t, "__name__", "?") if isinstance(e, _NotPlain) else type(e).__name__
            self.ch.send(_NOT_PLAIN, _encode(str(name), self.other))
            return
        self.ch.send(_RETURN, body)


class _Ref:
    __slots__ = ("ref",)

    def __init__(self, ref: int) -> None:
        self.ref = ref


def _flush() -> None:
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:  # a broken stream must not lose the answer
            pass


# --- the judge process ----------------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.not_plain = ""
        self.gone = False
        self.bad = ""
        self.hits: set[int] = set()


class _Remote:
    """The judge's end of the pipes: calls into the candidate process, callbacks out of it."""

    def __init__(self, ch: _Channel, state: _State) -> None:
        self.ch = ch
        self.state = state
        self.callbacks: list[Callable[..., Any]] = []
        self.go = False
        self.loaded = False  # the candidate's module ran to its end
        self.entry: Any = None  # its entry point (a handle) once loaded, when it defines one

    def request(self, kind: bytes, payload: Any) -> Any:
        if self.state.gone or self.state.bad:
            raise _Gone()
        try:
            body = _encode(payload, self.other)
        except _NotPlain as e:
            raise _Unsupported(str(e)) from None
        return self.answer(kind, body)

    def answer(self, kind: bytes, body: bytes | bytearray) -> Any:
        try:
            self.ch.send(kind, body)
            while True:
                got, data = self.ch.recv()
                dec = _Decoder(data, 1, self.refs)
                if got == _CALLBACK:
                    self.callback(dec.value())
                    continue
                value = dec.value()
                if dec.pos != len(data):
                    raise ValueError("trailing bytes")
                if got == _RETURN:
                    return value
                if got == _RAISE:
                    error = _rebuild(*_checked_exception(value))
                    break
                if got == _NOT_PLAIN:
                    self.state.not_plain = self.state.not_plain or str(value)
                    error = _NotPlain(self.state.not_plain)
                    break
                raise ValueError(f"unexpected message {got!r}")
        except (BrokenPipeError, _Gone):
            self.state.gone = True
            raise _Gone() from None
        except (ValueError, IndexError, TypeError, KeyError, OverflowError, RecursionError, _BadMessage) as e:
            self.state.bad = self.state.bad or f"{type(e).__name__}: {e}"
            raise _BadMessage(self.state.bad) from None
        raise error

    def callback(self, request: Any) -> None:
        """The candidate called a function of the tests' that they had passed to it."""
        ref, args, kwargs = request
        function = self.callbacks[ref]
        try:
            result = function(*args, **kwargs)
        except (_Gone, _BadMessage, _NotPlain, _Unsupported):
            raise
        except BaseException as e:
            self.ch.send(_RAISE, _encode(_exception_info(e, {}), self.other))
            return
        try:
            body = _encode(result, self.other)
        except _NotPlain as e:
            raise _Unsupported(str(e)) from None
        self.ch.send(_RETURN, body)

    def refs(self, tag: int, dec: _Decoder) -> Any:
        if tag != 104:  # only handles come from the candidate
            raise ValueError(f"unexpected tag {tag}")
        return _Handle(self, dec.number())

    def other(self, x: Any, buf: bytearray, depth: int) -> None:
        t = type(x)
        if t is _Handle:
            buf += b"h%x;" % object.__getattribute__(x, "_triad_ref")
        elif t is range:
            buf += b"r%x;%x;%x;" % (x.start, x.stop, x.step)
        elif type(name := getattr(x, "__name__", None)) is str and _builtins_snapshot.get(name) is x:
            buf += b"n" + name.encode() + b";"
        elif callable(x) and not isinstance(x, type):
            self.callbacks.append(x)
            buf += b"k%x;" % (len(self.callbacks) - 1)
        else:
            try:
                converted = _convert(x)
            except _NotPlain:
                raise _NotPlain(
                    f"a value of type {type(x).__name__} cannot be passed to the candidate"
                ) from None
            _enc(converted, buf, self.other, depth)


class _Handle:
    """A candidate object the tests hold: it can be called, read and passed back, nothing else."""

    __slots__ = ("_triad_ref", "_triad_remote")

    def __init__(self, remote: _Remote, ref: int) -> None:
        object.__setattr__(self, "_triad_remote", remote)
        object.__setattr__(self, "_triad_ref", ref)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        remote = object.__getattribute__(self, "_triad_remote")
        return remote.request(_CALL, (object.__getattribute__(self, "_triad_ref"), args, kwargs))

    def __getattr__(self, name: str) -> Any:
        remote = object.__getattribute__(self, "_triad_remote")
        return remote.request(_GETATTR, (object.__getattribute__(self, "_triad_ref"), name))

    def __repr__(self) -> str:
        return "<candidate object>"

    def _refuse(self, *args: Any) -> Any:
        remote = object.__getattribute__(self, "_triad_remote")
        remote.state.not_plain = remote.state.not_plain or "object"
        raise _NotPlain(remote.state.not_plain)

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __hash__ = _refuse
    __len__ = __iter__ = __contains__ = __getitem__ = __index__ = __int__ = __float__ = _refuse
    __setattr__ = __delattr__ = _refuse


class _LazyModule:
    """A standard-library module the candidate imported, imported by the judge on first use."""

    __slots__ = ("_triad_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_triad_name", name)

    def __getattr__(self, attr: str) -> Any:
        name = object.__getattribute__(self, "_triad_name")
        __import__(name)
        return getattr(sys.modules[name], attr)


def _module_for(key: str, modname: str) -> Any:
    """The judge's own module for a name the candidate bound to a standard-library module."""
    top = modname.partition(".")[0]
    if top not in sys.stdlib_module_names or not (modname == key or modname.endswith("." + key)):
        return None
    module = sys.modules.get(modname)
    return module if module is not None else _LazyModule(modname)


def _segment(lines: list[str], node: Any) -> str:
    return "\n".join(lines[node.lineno - 1 : node.end_lineno]).strip()


def _instrument(node: Any, index: dict[int, tuple[int, str]], lines: list[str], _ast: Any) -> None:
    """Insert ``__triad_hit__(k)`` after every assert below node; index maps line -> (k, source)."""
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            new: list[Any] = []
            for child in value:
                if isinstance(child, _ast.AST):
                    _instrument(child, index, lines, _ast)
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
            _instrument(value, index, lines, _ast)


def _tests_lineno(tb: TracebackType | None) -> int:
    lineno = 0
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<tests>":
            lineno = tb.tb_lineno
        tb = tb.tb_next
    return lineno


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


def _from_state(state: _State, passed: int, total: int, failing_test: str = "") -> dict[str, Any] | None:
    """The verdict that the state forces, whatever the tests did with the exceptions."""
    if state.gone:  # the candidate process exited or died: run_item adds its exit status
        return _verdict("crash", passed, total, "", failing_test, "")
    if state.bad:
        text = f"the candidate process broke the call protocol ({state.bad})"
        return _verdict("crash", passed, total, "ProtocolError", failing_test, text)
    if state.not_plain:
        text = f"candidate returned a non-plain value of type {state.not_plain}"
        return _verdict("wrong_answer", passed, total, "NonPlainReturn", failing_test, text)
    return None


def _from_exception(
    e: BaseException,
    state: _State,
    sources: dict[str, list[str]],
    in_tests: bool,
    passed: int,
    total: int,
    failing_test: str = "",
) -> dict[str, Any]:
    forced = _from_state(state, passed, total, failing_test)
    if forced is not None:
        return forced
    if isinstance(e, _Unsupported):
        return _verdict("sandbox_error", 0, 0, "", "", f"the tests cannot run here: {e}")
    name, text = _describe(e, sources)
    if isinstance(e, MemoryError):
        cls = "memory_limit"
    elif in_tests and isinstance(e, AssertionError):
        cls = "wrong_answer"
    else:
        cls = "runtime_error"
    return _verdict(cls, passed, total, name, failing_test, text)


def prepare_tests(tests: str, entry_point: str) -> tuple[Any, ...]:
    """The tests compiled for the judge, before anything runs; the parent calls this too.

    ``("check", code, index, total, lines)``: HumanEval style, ``check`` instrumented so that every
    assert reports itself (index: line -> (assert number, its source)). ``("units", [(is_assert,
    code, source)], total, lines)``: MBPP style, one code object per top-level statement.
    ``("error", exception_type, message)``: tests that cannot run (a sandbox error, not a verdict).
    The parent runs the same interpreter, so it sends these code objects (marshalled, cached per
    test source) and the judge does not import ``_ast`` or compile anything; docker sends the
    source and the judge calls this itself.
    """
    import _ast

    lines = tests.splitlines()
    try:
        tree: Any = compile(tests, "<tests>", "exec", _ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        return ("error", "SyntaxError", f"tests do not compile: {e}")
    modules = _modules_used(tree, _ast) if "." in tests else []
    checks = [n for n in tree.body if type(n) is _ast.FunctionDef and n.name == "check"]
    if checks:
        if not entry_point:
            return ("error", "", "HumanEval-style tests need entry_point")
        index: dict[int, tuple[int, str]] = {}
        _instrument(checks[-1], index, lines, _ast)
        total = max(1, len({v[0] for v in index.values()}))
        code = compile(tree, "<tests>", "exec", dont_inherit=True, optimize=0)  # asserts kept, always
        return ("check", code, index, total, lines, modules)
    units = []
    for stmt in tree.body:
        module = _ast.Module(body=[stmt], type_ignores=[])
        unit = compile(module, "<tests>", "exec", dont_inherit=True, optimize=0)
        units.append((type(stmt) is _ast.Assert, unit, _segment(lines, stmt)))
    total = sum(1 for u in units if u[0])
    if total == 0:
        return ("error", "", "tests contain no assert statement")
    return ("units", units, total, lines, modules)


def _modules_used(tree: Any, _ast: Any) -> list[str]:
    """Standard-library module names that the tests use as modules (``math.isclose``)."""
    found = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        value: Any = getattr(node, "value", None)
        if type(node) is _ast.Attribute and type(value) is _ast.Name and value.id in sys.stdlib_module_names:
            found.add(value.id)
        stack.extend(_children(node, _ast))
    return sorted(found)


def _children(node: Any, _ast: Any) -> list[Any]:
    out: list[Any] = []
    for field in node._fields:
        value = getattr(node, field, None)
        if isinstance(value, list):
            out.extend(v for v in value if isinstance(v, _ast.AST))
        elif isinstance(value, _ast.AST):
            out.append(value)
    return out


def _namespaces(entries: Any, modules: list[str]) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    """(the tests' namespace, the candidate's names, which of them are callable) from its message.

    The tests see the candidate's names, except that they keep the real builtins (a candidate's
    ``abs`` or ``len`` would judge the tests' own arithmetic), and that a standard-library module
    the tests use as one (``math.isclose``) is always the judge's own module, whatever the
    candidate bound to that name (a class ``math`` whose ``isclose`` is always true).
    """
    test_ns: dict[str, Any] = {"__name__": "__tests__", "__builtins__": builtins}
    candidate_ns: dict[str, Any] = {}
    callables: set[str] = set()
    for entry in entries:
        key, what = entry[0], entry[1]
        if type(key) is not str or len(entry) != (4 if what == 2 else 3):
            raise ValueError("bad name entry")
        if what == 0:
            value = _module_for(key, str(entry[2]))
        elif what == 1:
            value = entry[2]
        elif what == 2 and type(entry[2]) is _Handle:
            value = entry[2]
            if entry[3] is True:
                callables.add(key)
        else:
            raise ValueError("bad name entry")
        candidate_ns[key] = value
        if value is not None and key not in _builtins_snapshot and not (key[:2] == "__" == key[-2:]):
            test_ns[key] = value
    for name in modules:
        test_ns[name] = sys.modules.get(name) or _LazyModule(name)
    return test_ns, candidate_ns, callables


def _judge(
    prepared: tuple[Any, ...], entry_point: str, remote: _Remote, started: Callable[[int], None]
) -> dict[str, Any]:
    if prepared[0] == "error":
        return _verdict("sandbox_error", 0, 0, prepared[1], "", prepared[2])
    checks = prepared[0] == "check"
    if checks:
        _, tests_code, index, total, test_lines, modules = prepared
    else:
        _, units, total, test_lines, modules = prepared

    started(total)
    state = remote.state
    sources = {"<tests>": test_lines}
    remote.go = True
    try:
        remote.ch.send(_GO)
        kind, data = remote.ch.recv()
        dec = _Decoder(data, 1, remote.refs)
        if kind == _SYNTAX:
            error_class, name, text = dec.value()
            cls = "memory_limit" if error_class == "memory_limit" else "syntax_error"
            return _verdict(cls, 0, total, str(name), "", str(text))
        if kind == _RAISE:
            error = _rebuild(*_checked_exception(dec.value()))
            return _from_exception(error, state, sources, False, 0, total)
        if kind != _READY:
            raise ValueError(f"unexpected message {kind!r}")
        test_ns, candidate_ns, callables = _namespaces(dec.value(), modules)
        remote.loaded = True
        remote.entry = candidate_ns[entry_point] if entry_point in callables else None
    except (BrokenPipeError, _Gone):
        state.gone = True
        return _verdict("crash", 0, total)
    except (ValueError, IndexError, TypeError, KeyError, OverflowError, RecursionError, _BadMessage) as e:
        state.bad = state.bad or f"{type(e).__name__}: {e}"
        return _from_state(state, 0, total) or _verdict("crash", 0, total)
    test_ns["__triad_hit__"] = state.hits.add

    if checks:
        try:
            exec(tests_code, test_ns)  # noqa: S102
            if entry_point not in callables:
                raise NameError(f"entry point {entry_point!r} is not defined")
            test_ns["check"](candidate_ns[entry_point])
        except BaseException as e:
            failing = index.get(_tests_lineno(e.__traceback__), (-1, ""))
            ok = len(state.hits - {failing[0]})
            return _from_exception(e, state, sources, True, min(ok, total), total, failing[1])
        return _from_state(state, 0, total) or _verdict("passed", total, total)

    passed = 0
    first: dict[str, Any] | None = None
    for is_assert, unit, source in units:
        try:
            exec(unit, test_ns)  # noqa: S102
        except BaseException as e:
            if first is None:
                first = _from_exception(e, state, sources, True, 0, total, source)
            if not is_assert or state.gone or state.bad:
                break
            continue
        if is_assert:
            passed += 1
    first = _from_state(state, 0, total) or first
    if first is not None:
        first["tests_passed"] = passed
        return first
    return _verdict("passed", passed, total)


def _custom_score(
    custom: tuple[Any, str, dict[str, Any]], remote: _Remote, entry_point: str, verdict: dict[str, Any]
) -> dict[str, str]:
    """Run the user's verifier on the candidate's entry point, after the tests: {"custom_score":
    repr of a float in [0, 1], "custom_error": why it is 0 ("" when the verifier gave the score)}.

    It runs here, in the judge, like the tests: the candidate's calls cross the pipes as for them, and
    the score leaves in the verdict that carries the nonce. A verifier that raises, or returns
    anything but an int or float in [0, 1], scores 0. A candidate process that ends or breaks the
    protocol during the verifier's calls makes the verdict a crash, as during the tests.
    """
    code, source, problem = custom
    state = remote.state

    def zero(why: str) -> dict[str, str]:
        return {"custom_score": "0.0", "custom_error": "verifier: " + why}

    if not remote.loaded:
        return zero("not run: the candidate's module did not run to its end")
    if state.gone or state.bad:
        return zero("not run: the candidate process ended or broke the call protocol during the tests")
    if remote.entry is None:
        return zero(f"not run: the candidate defines no function {entry_point!r}")
    not_plain = state.not_plain  # the verifier's misuse of a value is its own, not the tests' verdict
    sources = {"<verifier>": source.splitlines()}
    value: Any = None
    error: BaseException | None = None
    try:
        if type(code) is bytes:  # compiled by the parent (the same interpreter)
            code = marshal.loads(code)  # noqa: S302 — from our trusted parent
        else:  # docker, or a source that does not compile: the error is the verifier's
            code = compile(code, "<verifier>", "exec", dont_inherit=True, optimize=0)
        ns: dict[str, Any] = {"__name__": "__verifier__", "__builtins__": builtins}
        exec(code, ns)  # noqa: S102 — the user's verifier, trusted like the tests
        function = ns.get("reward")
        if not callable(function):
            raise TypeError("the source defines no function reward(candidate, problem)")
        value = function(remote.entry, dict(problem))
    except BaseException as e:
        error = e
    state.not_plain = not_plain
    if state.gone or state.bad:
        forced = _from_state(state, verdict["tests_passed"], verdict["tests_total"])
        verdict.update(forced or {})
        return zero("the candidate process ended or broke the call protocol during the verifier's calls")
    if isinstance(error, _NotPlain):
        return zero(f"raised NonPlainReturn: a candidate value of type {error} is not plain data")
    if error is not None:
        name, text = _describe(error, sources)
        return zero(f"raised {name}\n{text}")
    if type(value) not in (int, float) or not 0.0 <= value <= 1.0:  # NaN fails the comparison too
        shown = repr(value) if type(value) in (int, float) else f"a value of type {type(value).__name__}"
        return zero(f"reward() returned {shown[:80]}, not a number in [0, 1]")
    return {"custom_score": repr(float(value)), "custom_error": ""}


def _json(value: Any) -> str:
    """A tiny JSON encoder for the verdict (str, int, bool values, lists and dicts of them), ASCII only."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(_json(str(k)) + ":" + _json(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(v) for v in value) + "]"
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


def _resource(path: str) -> Any:
    """The resource module, loaded straight from its file when the parent says where it is.

    ``import resource`` would first set up the path-based importers (a few hundred microseconds);
    it is registered in sys.modules, where ``wait4`` (and the candidate's own import) find it.
    """
    module = sys.modules.get("resource")
    if module is None and path:
        import _imp

        spec: Any = _Spec()
        spec.name, spec.origin = "resource", path
        module = _imp.create_dynamic(spec)
        _imp.exec_dynamic(module)
        sys.modules["resource"] = module
    if module is None:
        import resource as module
    return module


class _Spec:
    name = origin = ""


# A program item's judge runs every case: its own CPU limit is this (the parent's deadline bounds the
# item), and it writes each case's input, however long, into a memfd: its own file size limit is this.
# Each case's process lowers both to a function candidate's values before it execs (_run_case).
_PROGRAM_JUDGE_CPU_S = 1 << 20
_PROGRAM_JUDGE_FSIZE = 1 << 40
_FSIZE = 1 << 20


def _set_limits(resource: Any, timeout_s: float, memory_mb: int, program: bool = False) -> None:
    cpu = _PROGRAM_JUDGE_CPU_S if program else int(timeout_s) + 1
    fsize = _PROGRAM_JUDGE_FSIZE if program else _FSIZE
    for limit, value in (
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20)),
        (resource.RLIMIT_NPROC, (64, 64)),
        (resource.RLIMIT_FSIZE, (fsize, fsize)),
        (resource.RLIMIT_CORE, (0, 0)),
        (resource.RLIMIT_NOFILE, (256, 256)),
    ):
        resource.setrlimit(limit, value)


def _stdin_to_null() -> None:
    null = posix.open("/dev/null", posix.O_RDONLY)
    posix.dup2(null, 0)
    posix.close(null)


def _undumpable() -> None:
    """Keep a same-uid candidate from ptracing the judge or opening its /proc entries."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except Exception:  # best effort: documented for the backends that share one uid
        pass


def _join_cgroup(fds: tuple[int, ...]) -> None:
    """Move this process into the slot's cgroup (``0``: the writer) before it forks anything, so
    every process of the item is in it and the parent can kill them all (workers/sandbox/cgroup.py).
    The descriptors are closed here: the candidate process never holds them. No cgroup, no item."""
    for fd in fds:
        try:
            posix.write(fd, b"0")
            posix.close(fd)
        except OSError as e:
            posix.write(2, f"sandbox: cannot join the slot's cgroup: {e}\n".encode())
            _exit(4)


def run_item(public: tuple[Any, ...], vfd: int) -> None:
    """Run one item: fork the candidate process, judge it, write the verdict on vfd; never returns.

    What the item leaves behind is not the judge's business: the parent empties the slot's cgroup
    after every item, and a warm zygote empties /tmp before the next (``zygote``).
    """
    code, compiled, timeout_s, memory_mb, uid, resource_path, cpus, cgroup_fds, program = public
    _join_cgroup(cgroup_fds)
    if cpus:  # warm mode: the CPU of the parent's thread, not the one the zygote was started on
        try:  # noqa: SIM105 — contextlib is one import more for every sandbox
            posix.sched_setaffinity(0, cpus)
        except OSError:
            pass
    _set_limits(_resource(resource_path), timeout_s, memory_mb, bool(program))
    if program:
        _judge_program(code, timeout_s, uid, vfd)
    to_candidate, to_judge = posix.pipe(), posix.pipe()
    pid = posix.fork()
    if pid == 0:  # the candidate process: no secret, no verdict descriptor, its own uid
        try:
            posix.close(to_candidate[1])
            posix.close(to_judge[0])
            if vfd > 2:  # docker: the verdict shares stdout, and the candidate cannot know its nonce
                posix.close(vfd)
            _stdin_to_null()
            if uid >= 0:
                posix.setgroups([])
                posix.setgid(uid)
                posix.setuid(uid)
            _Candidate(_Channel(to_candidate[0], to_judge[1], 1 << 62), code, compiled).main()
        finally:
            _exit(0)
    posix.close(to_candidate[0])
    posix.close(to_judge[1])
    if uid < 0 and posix.geteuid() != 0:
        _undumpable()
    secret = bytearray()
    while chunk := _read(0, 1 << 16):
        secret += chunk
    _stdin_to_null()
    nonce, tests, entry_point, max_text, custom = marshal.loads(secret)  # noqa: S302 — our trusted parent
    del secret
    # prepared by the parent (the same interpreter), or the source (docker)
    prepared = marshal.loads(tests) if type(tests) is bytes else prepare_tests(tests, entry_point)  # noqa: S302

    def started(total: int) -> None:
        _write_all(vfd, f"started:{nonce}:{total}\n".encode())

    state = _State()
    remote = _Remote(_Channel(to_judge[0], to_candidate[1], max(1 << 20, memory_mb << 20)), state)
    verdict = _judge(prepared, entry_point, remote, started)
    if custom is not None and verdict["error_class"] != "sandbox_error":
        verdict.update(_custom_score(custom, remote, entry_point, verdict))
        verdict["custom_error"] = verdict["custom_error"][:max_text]
    if remote.go and not state.bad:
        if not state.gone:
            try:  # let the candidate flush its output and exit, then take its CPU time
                remote.ch.send(_BYE)
                remote.ch.recv()
            except BaseException:
                pass
        _, status, usage = posix.wait4(pid, 0)
        verdict["cpu_us"] = int((usage.ru_utime + usage.ru_stime) * 1_000_000)
        if state.gone:
            verdict["exit_status"] = posix.waitstatus_to_exitcode(status)
    _flush()
    verdict["traceback"] = verdict["traceback"][:max_text]
    verdict["failing_test"] = verdict["failing_test"][:max_text]
    _finish(verdict, nonce, vfd)


def _finish(verdict: dict[str, Any], nonce: str, vfd: int) -> None:
    """Write the verdict with its nonce; never returns."""
    verdict["nonce"] = nonce
    _write_all(vfd, b"\n" + _json(verdict).encode() + b"\n")
    _exit(0)


# --- program items: the judge runs the program once per case --------------------------------------

# What each case's interpreter runs (``python -S -s -B -P -c``): the program's source, read from
# descriptor 3 (a memfd of the judge's, closed before the program starts), run as ``__main__``.
# exec replaced the judge's memory, so nothing of the judge (the expected outputs, the nonce) is
# in the program's process; its stdin, stdout and stderr are memfds of its own.
_PROGRAM_BOOT = (
    "import posix\n"
    "b = b''\n"
    "while c := posix.pread(3, 1 << 20, len(b)):\n"
    "    b += c\n"
    "posix.close(3)\n"
    "import sys\n"
    "sys.argv[:] = ['main.py']\n"
    "c = compile(b, '<program>', 'exec', dont_inherit=True)\n"
    "del b\n"
    "exec(c, {'__name__': '__main__', '__builtins__': __builtins__})\n"
)
_SIGKILL, _SIGXCPU, _SIGXFSZ = 9, 24, 25  # Linux's numbers, without importing signal


def _memfd(name: str, data: bytes) -> int:
    fd = posix.memfd_create(name, 1)  # MFD_CLOEXEC: only the case's child gets it, by dup2
    _write_all(fd, data)
    posix.lseek(fd, 0, 0)
    return fd


def _read_fd(fd: int, cap: int) -> tuple[bytes, bool]:
    """(up to cap bytes of what was written to the memfd, whether there was more)."""
    size = posix.fstat(fd).st_size
    data = bytearray()
    while len(data) < min(size, cap):
        chunk = posix.pread(fd, min(size, cap) - len(data), len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data), size > cap


def _outcome(status: int, timed_out: bool, over: bool, err: bytes) -> tuple[str, str]:
    """(error class, what happened) of one run of the program, before its output is compared."""
    if timed_out:
        return "timeout", "the program ran past its time limit"
    code = posix.waitstatus_to_exitcode(status)
    if code == -_SIGXCPU:
        return "timeout", "the program ran past its CPU time limit"
    if over or code == -_SIGXFSZ:
        return "output_limit", "the program's output exceeded the limit"
    if code == -_SIGKILL:  # not by the judge: the memory cgroup's OOM killer
        return "memory_limit", "the program was killed (out of memory)"
    if code < 0:
        return "crash", f"the program died of signal {-code}"
    if code == 0:
        return "passed", ""
    last = err.rstrip().rsplit(b"\n", 1)[-1]
    if b"MemoryError" in last or b"Cannot allocate memory" in last:
        return "memory_limit", "the program ran out of memory"
    if last.startswith((b"SyntaxError", b"IndentationError", b"TabError")):
        return "syntax_error", "the program does not compile"
    return "runtime_error", f"the program exited with status {code}"


def _run_case(exe: str, source: bytes, data: bytes, timeout_s: float, uid: int, cap: int) -> dict[str, Any]:
    """Run the program once on data; its outcome before comparison, its output and stderr."""
    import time

    fds = [_memfd("code", source), _memfd("stdin", data), _memfd("stdout", b""), _memfd("stderr", b"")]
    start = time.monotonic()
    pid = posix.fork()
    if pid == 0:
        try:
            for target, fd in ((0, fds[1]), (1, fds[2]), (2, fds[3]), (3, fds[0])):
                posix.dup2(fd, target)
                posix.set_inheritable(target, True)  # dup2 onto itself keeps the memfd's close-on-exec
            posix.closerange(4, 1 << 16)  # the verdict descriptor and the judge's memfds
            posix.setpgid(0, 0)
            cpu = int(timeout_s) + 1  # as a function item's candidate gets them (_set_limits)
            resource = sys.modules["resource"]  # loaded by run_item (_resource)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
            resource.setrlimit(resource.RLIMIT_FSIZE, (_FSIZE, _FSIZE))
            if uid >= 0:
                posix.setgroups([])
                posix.setgid(uid)
                posix.setuid(uid)
            posix.execv(exe, [exe, "-S", "-s", "-B", "-P", "-c", _PROGRAM_BOOT])
        finally:
            _exit(127)
    timed_out = False
    delay = 0.0002
    deadline = start + timeout_s
    while True:
        got, status, usage = posix.wait4(pid, posix.WNOHANG)
        if got:
            break
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
            _kill_case(pid, uid)
            _, status, usage = posix.wait4(pid, 0)
            break
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, 0.005)
    duration_ms = int((time.monotonic() - start) * 1000)
    _kill_case(pid, uid)  # what the program started dies with it
    out, out_over = _read_fd(fds[2], cap)
    err, err_over = _read_fd(fds[3], cap)
    for fd in fds:
        posix.close(fd)
    outcome, why = _outcome(status, timed_out, out_over or err_over, err)
    return {
        "outcome": outcome,
        "why": why,
        "duration_ms": duration_ms,
        "cpu_us": int((usage.ru_utime + usage.ru_stime) * 1_000_000),
        "out": out.decode("utf-8", "replace"),
        "err": err.decode("utf-8", "replace"),
    }


def _kill_case(pid: int, uid: int) -> None:
    """SIGKILL a case's process and its process group; with a slot uid, every process of that uid
    (under bwrap the judge has no CAP_KILL: a helper that becomes the uid does it)."""
    if uid >= 0:
        _kill_leftovers(uid, wipe=False)
        return
    for target in (-pid, pid):
        try:  # noqa: SIM105 — contextlib is one import more for every sandbox
            posix.kill(target, _SIGKILL)
        except OSError:
            pass


def _judge_program(code: str, timeout_s: float, uid: int, vfd: int) -> None:
    """A program item: run the program once per case, compare, write the verdict; never returns.

    The judge reads the secret (the cases with their expected outputs, the comparisons) only now,
    in its own process; each case runs in a fresh interpreter that it forks and that replaces
    itself at once (``_run_case``), as the slot uid when there is one, under the same rlimits
    (inherited), with the case's input on stdin and the time limit counted per case.
    """
    if uid < 0:  # the program shares our uid (root too, in a container): no reading our memory
        _undumpable()
    secret = bytearray()
    while chunk := _read(0, 1 << 16):
        secret += chunk
    _stdin_to_null()
    nonce, program, _, max_text, _ = marshal.loads(secret)  # noqa: S302 — our trusted parent
    del secret
    compare_code, cases, compare, tol, stop_early = program
    ns: dict[str, Any] = {"__name__": "compare", "__builtins__": builtins}
    exec(marshal.loads(compare_code) if type(compare_code) is bytes else compare_code, ns)  # noqa: S102, S302
    same_output, capped = ns["same_output"], ns["capped"]
    _write_all(vfd, f"started:{nonce}:{len(cases)}\n".encode())
    source = code.encode("utf-8", "surrogatepass")
    exe = sys.executable
    ran: list[dict[str, Any]] = []
    passed, cpu_us = 0, 0
    first, first_why = -1, ""
    for index, (given, expected) in enumerate(cases):
        case = _run_case(exe, source, given.encode("utf-8", "surrogatepass"), timeout_s, uid, max_text)
        cpu_us += case["cpu_us"]
        if case["outcome"] == "passed" and not same_output(expected, case["out"], compare, tol):
            case["outcome"], case["why"] = "wrong_answer", "the output differs from the expected output"
        if case["outcome"] == "passed":
            passed += 1
        elif first < 0:
            first, first_why = index, case["why"]
        ran.append(
            {
                "index": index,
                "outcome": case["outcome"],
                "duration_ms": case["duration_ms"],
                "actual": capped(case["out"]),
                "stderr": capped(case["err"]),
            }
        )
        if stop_early and first >= 0:
            break
    if first < 0:
        verdict = _verdict("passed", passed, len(cases))
    else:
        why = f"case {first}: {ran[first]['outcome']}: {first_why}"
        text = f"{why}\n{ran[first]['stderr']}" if ran[first]["stderr"] else why
        verdict = _verdict(ran[first]["outcome"], passed, len(cases), "", f"case {first}", text[:max_text])
    verdict["cpu_us"] = cpu_us
    verdict["cases"] = ran
    _finish(verdict, nonce, vfd)


def _read_frame(fd: int) -> Any:
    """The first part of stdin: a 4-byte length, then marshal((runner or None, public))."""
    buf = b""
    n = 4
    while len(buf) < n:
        chunk = _read(fd, n - len(buf))
        if not chunk:
            _exit(3)
        buf += chunk
        if n == 4 and len(buf) == 4:
            n = 4 + int.from_bytes(buf, "big")
    return marshal.loads(buf[4:])  # noqa: S302 — written by our trusted parent


def _become_and_clean(uid: int, wipe: bool = True) -> bool:
    """Become uid (for good), SIGKILL every other process of uid, then empty /tmp (when wipe). True
    when clean."""
    posix.setgroups([])
    posix.setgid(uid)
    posix.setuid(uid)
    clean = False
    for _ in range(2000):
        posix.kill(-1, 9)  # every process this uid may signal but us: only the item's
        if not _others_alive(uid):
            clean = True
            break
        posix.sched_yield()
    if not wipe:
        return clean
    _wipe("/tmp")  # noqa: S108 — the sandbox's own /tmp
    return clean and not posix.listdir("/tmp")  # noqa: S108


def _kill_leftovers(uid: int, wipe: bool = True) -> bool:
    """In a helper child, ``_become_and_clean(uid, wipe)``; True when it worked."""
    pid = posix.fork()
    if pid == 0:
        try:
            _exit(0 if _become_and_clean(uid, wipe) else 1)
        except BaseException:
            _exit(2)
    _, status = posix.waitpid(pid, 0)
    return status == 0


def _others_alive(uid: int) -> bool:
    """Is any process of uid other than us still running (not a zombie) in this pid namespace?"""
    me = str(posix.getpid())
    for name in posix.listdir("/proc"):
        if not name.isdigit() or name == me:
            continue
        try:
            if posix.stat("/proc/" + name).st_uid != uid:
                continue
            with open("/proc/" + name + "/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            return True
    return False


def _wipe(top: str) -> None:
    for name in posix.listdir(top):
        path = top + "/" + name
        try:
            if posix.lstat(path).st_mode & 0o170000 == 0o040000:  # a directory, not a link to one
                posix.chmod(path, 0o700)
                _wipe(path)
                posix.rmdir(path)
            else:
                posix.unlink(path)
        except OSError:
            pass


def zygote(ctrl: int, uid: int, cgroup_fds: tuple[int, ...] = (), resource_path: str = "") -> None:
    """Warm mode: wait on the control socket for one item at a time, fork a fresh judge for it.

    Each message carries four descriptors (stdin, stdout, stderr, verdict), made by the parent for
    that item only. The child closes the control socket, takes them as 0, 1, 2 and 3, starts a new
    session and runs the item exactly as a cold runner would (its candidate process as the slot
    uid). When the judge has exited, "done <wait status>" goes back. The parent then empties the
    slot's cgroup, which holds every process of the item (cgroup.py), before it sends the next
    item; and before forking that item's judge, the zygote empties /tmp if the last item left
    anything there (as the slot uid, in a helper; ``_kill_leftovers``). Only used under bwrap as
    root (own pid namespace, slot uid distinct from ours). cgroup_fds (v2: ``cgroup.procs`` of
    the slot's cgroup, see cgroup.py) stay open here; each judge joins that cgroup with them
    first, the zygote does not (v1: none, the zygote was born in the cgroup and so is every judge).

    What every judge would do alike is done once, here: ``resource`` is loaded, and what the
    zygote holds is frozen out of the garbage collector, so that no judge's collection writes to
    (and so copies) the pages it shares with the zygote. Then ``ready`` tells the parent (which
    learns the zygote's pid from its credentials) that it serves.
    """
    import _socket  # not socket.py: it imports selectors, enum, os... which every fork would copy
    import gc

    _stdin_to_null()
    _resource(resource_path)
    gc.freeze()
    sock = _socket.socket(fileno=ctrl)
    sock.sendall(b"ready\n")
    while True:
        msg, ancillary, _flags, _addr = sock.recvmsg(64, _socket.CMSG_LEN(16))
        fds = [
            int.from_bytes(data[i : i + 4], sys.byteorder, signed=True)
            for level, kind, data in ancillary
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
            for i in range(0, len(data) - 3, 4)
        ]
        if not msg or len(fds) != 4:
            _exit(0)
        # The parent emptied the slot's cgroup after the last item: none of its processes is left
        # to write here. What it left in /tmp goes now, as the slot uid (a sticky /tmp), and if
        # that fails the whole sandbox does.
        if posix.listdir("/tmp") and (not _kill_leftovers(uid) or posix.listdir("/tmp")):  # noqa: S108
            _exit(3)
        pid = posix.fork()
        if pid == 0:
            sock.close()
            for target, fd in enumerate(fds):
                posix.dup2(fd, target)
            for fd in fds:
                if fd > 3:
                    posix.close(fd)
            posix.setsid()
            _, public = _read_frame(0)
            run_item((*public[:4], uid, public[5], public[6], cgroup_fds, *public[8:]), 3)
        for fd in fds:
            posix.close(fd)
        _, status = posix.waitpid(pid, 0)
        sock.sendall(b"done %d\n" % status)


def main() -> None:
    payload = globals()["_PAYLOAD"]  # set by the bootstrap (payload.BOOTSTRAP)
    if payload[0] == "zygote":
        zygote(int(sys.argv[1]), int(payload[1]), tuple(payload[2]), str(payload[3]))
    else:
        run_item(payload, int(sys.argv[1]))


if __name__ == "__main__":
    main()
