"""RESP2 wire codec: request parsing, reply encoding, and the client side.

Server side
    :class:`RequestParser` turns the bytes a client sends into commands
    (``list[bytes]`` each).  It accepts multibulk requests and inline (telnet)
    requests mixed freely, enforces Redis's limits and raises
    :class:`ProtocolError` with Redis's own error text.
    :func:`encode_into` / :func:`encode_many` / :func:`encode` turn Python
    values into RESP2 replies.

Client side
    :func:`encode_command` builds a multibulk request; :class:`ReplyParser`
    decodes replies (error replies come back as :class:`ErrorReply` values).

How the request parser is fast and still exact
    With the C extension ``redraft._cresp`` (built at install when a C
    compiler is present), every complete multibulk request is parsed in C
    exactly as Redis reads it; whatever C leaves (inline requests, a request
    cut by the end of a read, anything malformed or over a limit) goes to the
    byte-level parser below, so errors and limits have one implementation.
    The C encoders answer bytes, None, ints and OK and hand other values to
    the Python ones.  Without the extension (or with REDRAFT_PURE_PYTHON=1):

    Well-formed pipelines are handed to hiredis (C) in one piece.  hiredis is
    more lenient than Redis (it accepts any RESP type anywhere and would
    allocate a list for a huge aggregate header before any element arrives),
    so a chunk only goes to hiredis after a cheap byte scan finds nothing it
    could misread, and its output is type-checked.  Everything else -- inline
    requests, partial requests at the end of a read, limit violations, errors
    -- goes through a byte-level parser that mirrors Redis's
    ``processInlineBuffer`` / ``processMultibulkBuffer``.  The one known
    leniency: Redis skips the two bytes after a bulk payload without checking
    that they are CRLF; after such a malformed trailer the element or request
    that follows may be parsed as hiredis would rather than as Redis would.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from itertools import chain
from typing import Any, Final, cast

import hiredis
from mypy_extensions import mypyc_attr

from redraft.errors import error_text
from redraft.machine import NULL_ARRAY, OK, Double, Pairs, Status, Verbatim

_cresp: Any = None
if not os.environ.get("REDRAFT_PURE_PYTHON"):
    try:
        from redraft import _cresp
    except ImportError:  # built without a C compiler: the Python paths serve alone
        _cresp = None
SPEEDUPS: Final = _cresp is not None
"""Whether the C fast paths (``redraft._cresp``) are in use."""

Lookup = tuple[
    dict[bytes, Callable[[], tuple[dict[bytes, Any], ...]]],
    Callable[[], bool],
    bytearray,
    int,
    bytes,
]
"""What :meth:`RequestParser.parse` may answer requests from: ``(tables, gate, replies, limit, nil)``."""

__all__ = [
    "CRLF",
    "NULL_BULK",
    "OK_REPLY",
    "ErrorReply",
    "Lookup",
    "ProtocolError",
    "ReplyParser",
    "RequestParser",
    "encode",
    "encode_command",
    "encode_error",
    "encode_into",
    "encode_many",
    "encode_push",
    "format_float",
    "run_end",
    "split_inline",
]

DEFAULT_MAX_BULK_LEN: Final = 512 * 1024 * 1024
"""Redis's ``proto-max-bulk-len``."""
DEFAULT_MAX_MULTIBULK_LEN: Final = 1024 * 1024
"""Largest accepted element count of a multibulk request."""
DEFAULT_MAX_INLINE_LEN: Final = 64 * 1024
"""Redis's ``PROTO_INLINE_MAX_SIZE``: longest inline request or header line."""


class ProtocolError(Exception):
    """The client broke the protocol; the message is Redis's reply text.

    The server should run :attr:`commands` (complete requests that arrived
    before the bad bytes, in order), reply ``-ERR <message>`` and close the
    connection.  A parser that raised keeps raising on every later call.
    """

    def __init__(self, message: str, commands: Sequence[list[bytes]] = ()) -> None:
        super().__init__(message)
        self.commands: list[list[bytes]] = list(commands)


@mypyc_attr(allow_interpreted_subclasses=True)  # a machine may raise or return a subclass
class ErrorReply:
    """An error reply whose text is final, e.g. ``ErrorReply("TRY 127.0.0.1:7482")``.

    Encodes to ``-<text>\\r\\n``.  :class:`ReplyParser` returns error replies
    as instances of this class.  CR and LF in the text become spaces, since
    they would end the reply line early.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if "\r" in text or "\n" in text:
            text = text.replace("\r", " ").replace("\n", " ")
        self.text = text

    @property
    def code(self) -> str:
        """The first word of the text (``"ERR"``, ``"TRY"``, ``"WRONGTYPE"``...)."""
        return self.text.split(" ", 1)[0]

    def __repr__(self) -> str:
        return f"ErrorReply({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorReply) and other.text == self.text

    def __hash__(self) -> int:
        return hash(("ErrorReply", self.text))


# --------------------------------------------------------------------------
# Request parsing
# --------------------------------------------------------------------------

_STAR: Final = 42  # b"*"
_DOLLAR: Final = 36  # b"$"
_CR: Final = 13

_INLINE: Final = 0
_MBULK_HEADER: Final = 1
_BULK_HEADER: Final = 2

_TOO_BIG: Final = (
    "Protocol error: too big inline request",
    "Protocol error: too big mbulk count string",
    "Protocol error: too big bulk count string",
)
_BAD_MBULK: Final = "Protocol error: invalid multibulk length"
_BAD_BULK: Final = "Protocol error: invalid bulk length"
_UNBALANCED: Final = "Protocol error: unbalanced quotes in request"

# Redis's string2ll: optional '-', no leading zeros, no '+', no spaces, and
# fewer than 21 characters (its LONG_STR_SIZE); the range is checked apart.
_INT_RE: Final = re.compile(rb"-?[1-9][0-9]{0,19}|0")
_LLONG_MIN: Final = -(2**63)
_LLONG_MAX: Final = 2**63 - 1


def _string2ll(s: bytes) -> int | None:
    if _INT_RE.fullmatch(s) is None:
        return None
    v = int(s)
    return v if _LLONG_MIN <= v <= _LLONG_MAX else None


# The scan that decides whether hiredis may see a chunk.  Translating first
# turns the search into a few memchr-speed finds instead of a slow regex:
# digits become "0", the RESP3 aggregate type bytes become "!", the string
# types Redis rejects inside a request become "+".
def _scan_table() -> bytes:
    table = bytearray(range(256))
    for c in b"0123456789":
        table[c] = ord("0")
    for c in b"%~>|":
        table[c] = ord("!")
    for c in b"+=(":
        table[c] = ord("+")
    return bytes(table)


_SCAN_TABLE: Final = _scan_table()
# After the translation, "\r\n!" and "\r\n+" mark a type byte at the start of
# a line that hiredis would accept but Redis would not, and "*000000" or
# "!000000" an aggregate header of six or more digits, for which hiredis
# would allocate the whole list before any element arrives.  The rare bytes
# "!" and "+" are looked for first, at memchr speed.
_BIG_ARRAY: Final = re.compile(rb"\*0{6}")

# Chunks longer than this start with the exact parser, which goes on while
# requests are at least _LARGE_REQUEST bytes long.
_SMALL_CHUNK: Final = 8192
# Reads up to this size are first tried as one whole canonical request.
_ONE_REQUEST_BYTES: Final = 16384
# Reads shorter than this are split without first looking for a pipeline.
_SPLIT_FREELY: Final = 256
_LARGE_REQUEST: Final = 1024
# "*-9223372036854775808": the longest header line a valid number makes.
_LONGEST_HEADER: Final = 21

# Each element of a parsed multibulk took at least 6 bytes ("$0\r\n\r\n"),
# or 3 for the lenient forms noted in the module docstring; chunks shorter
# than this bound cannot have broken a limit.
_MIN_ELEMENT_BYTES: Final = 3

# Maps a byte value v (a length below 256) to the digits of v beyond the first.
_EXTRA_DIGITS: Final = bytes(0 if v < 10 else 1 if v < 100 else 2 for v in range(256))

# Fed to hiredis after a chunk it fully consumed: it comes back as [b""]
# only if hiredis was between requests, not inside a multibulk.
_PROBE: Final = b"*1\r\n$0\r\n\r\n"
_PROBE_REPLY: Final = [b""]

_NOT_ENOUGH: Final = object()


class _HiredisError(Exception):
    """hiredis refused the chunk; the exact parser decides what it was."""


def _new_reader() -> Any:
    return hiredis.Reader(protocolError=_HiredisError, notEnoughData=_NOT_ENOUGH)


def _drain(reader: Any, buf: bytes, start: int, stop: int) -> list[list[bytes]]:
    """Feed ``buf[start:stop]`` to hiredis and return the requests it completes."""
    reader.feed(buf, start, stop - start)
    cmds: list[list[bytes]] = list(iter(reader.gets, _NOT_ENOUGH))
    # Raises TypeError unless every request is a sequence of bytes-like
    # values, which hiredis makes only of RESP strings...
    b"".join(chain.from_iterable(cmds))
    # ...or an empty string, a top-level "$0" that Redis reads as inline.
    if not all(cmds) and any(type(c) is not list for c in cmds if not c):
        raise _HiredisError("not a multibulk request")
    return cmds


def _one_request(data: bytes) -> list[bytes] | None:
    """``data`` as one request if it is exactly the canonical encoding of one, else None.

    Unpipelined clients send one whole request per read.  Splitting at CRLF
    and matching every header with its argument proves that ``data`` is the
    canonical encoding of those arguments, which every path of the parser
    reads the same way, at a fraction of the general path's cost.  Anything
    else (several requests, a CRLF inside an argument, a partial request)
    fails a check and goes the general way.
    """
    parts = data.split(b"\r\n")
    n = len(parts)
    if n < 4 or n & 1 or parts[-1]:
        return None
    count = (n - 2) >> 1
    if parts[0] != (_REQUEST_COUNTS[count] if count < 64 else b"*%d" % count):
        return None
    args = parts[2 : n - 1 : 2]
    headers = _REQUEST_SIZES
    for head, arg in zip(parts[1 : n - 1 : 2], args, strict=True):
        size = len(arg)
        if head != (headers[size] if size < 1024 else b"$%d" % size):
            return None
    return args


# The headers of the commonest counts and sizes, to compare instead of format.
_REQUEST_COUNTS: Final = [b"*%d" % i for i in range(64)]
_REQUEST_SIZES: Final = [b"$%d" % i for i in range(1024)]


def _at_boundary(reader: Any) -> bool:
    """Whether hiredis stands between requests (it may be inside a multibulk)."""
    if reader.has_data():
        return False
    reader.feed(_PROBE)
    return bool(reader.gets() == _PROBE_REPLY)


def _canonical_size(cmds: list[list[bytes]]) -> int:
    """Bytes of the canonical multibulk encoding of ``cmds``."""
    if not cmds:
        return 0
    # "*N\r\n" is 3 + digits(N) bytes; "$L\r\n<data>\r\n" is 5 + digits(L) + L.
    try:
        # Counts and lengths below 256 (the usual case) fit in a bytes object,
        # whose digits can be counted by C loops.
        counts = bytes(map(len, cmds))
        lens = bytes(map(len, chain.from_iterable(cmds)))
    except ValueError:
        counts_l = list(map(len, cmds))
        lens_l = list(map(len, chain.from_iterable(cmds)))
        digits = sum(map(len, map(str, counts_l))) + sum(map(len, map(str, lens_l)))
        return 3 * len(counts_l) + 5 * len(lens_l) + digits + sum(lens_l)
    extra = (counts + lens).translate(_EXTRA_DIGITS)
    digits = len(extra) + extra.count(1) + 2 * extra.count(2)
    return 3 * len(counts) + 5 * len(lens) + digits + sum(lens)


# --- inline requests ---------------------------------------------------------

_INLINE_SPECIAL: Final = re.compile(rb"[\"'\x00\x0b\x0c]")
_BLANKS: Final = re.compile(rb"[ \t\n\r\x0b\x0c]*")
_UNQUOTED: Final = re.compile(rb"[^ \t\n\r\"'\x00]*")
_DOUBLE_QUOTED: Final = re.compile(rb'"((?:[^"\\]|\\[\s\S])*)"')
_SINGLE_QUOTED: Final = re.compile(rb"'((?:[^'\\]|\\'|\\(?!'))*)'")
_ESCAPE: Final = re.compile(rb"\\(x[0-9a-fA-F]{2}|[\s\S])")
_ESCAPES: Final = {
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
    ord("b"): b"\b",
    ord("a"): b"\a",
}
_ISSPACE: Final = b" \t\n\r\x0b\x0c"


def _unescape(m: re.Match[bytes]) -> bytes:
    s = m.group(1)
    if len(s) == 3:
        return bytes((int(s[1:], 16),))
    return _ESCAPES.get(s[0], s)


_ABSENT: Final = object()


def _run_end_py(
    cmds: list[list[bytes]], i: int, n: int, table: dict[Any, Any], value: object
) -> int:
    """The first index from ``i`` on (before ``n``) whose request's name does not map to ``value``.

    Where a run of one command's parsed requests ends (``table`` the
    routes by name): a pipeline of SETs is found in one pass, in C when the
    extension is built.
    """
    while i < n and table.get(cmds[i][0], _ABSENT) is value:
        i += 1
    return i


def split_inline(line: bytes) -> list[bytes]:
    """Split an inline request line the way Redis's ``sdssplitargs`` does.

    Arguments are separated by whitespace.  ``"..."`` understands the escapes
    ``\\n \\r \\t \\b \\a \\xHH`` and a backslash before any other character;
    ``'...'`` understands only ``\\'``.  A closing quote must be followed by
    whitespace or the end of the line, and a NUL byte ends the line, as in
    Redis.  Raises :class:`ProtocolError` on unbalanced quotes.
    """
    if _INLINE_SPECIAL.search(line) is None:
        return line.split()
    nul = line.find(b"\x00")
    if nul >= 0:
        line = line[:nul]
    args: list[bytes] = []
    n = len(line)
    pos = 0
    while True:
        m = _BLANKS.match(line, pos)
        assert m is not None  # both patterns match the empty string
        pos = m.end()
        if pos >= n:
            return args
        m = _UNQUOTED.match(line, pos)
        assert m is not None
        arg = m.group()
        pos = m.end()
        if pos < n and line[pos] in b"\"'":
            if line[pos] == ord('"'):
                q = _DOUBLE_QUOTED.match(line, pos)
                if q is None:
                    raise ProtocolError(_UNBALANCED)
                arg += _ESCAPE.sub(_unescape, q.group(1))
            else:
                q = _SINGLE_QUOTED.match(line, pos)
                if q is None:
                    raise ProtocolError(_UNBALANCED)
                arg += q.group(1).replace(b"\\'", b"'")
            pos = q.end()
            if pos < n and line[pos] not in _ISSPACE:
                raise ProtocolError(_UNBALANCED)
        args.append(arg)


class RequestParser:
    """Incremental parser of client requests (multibulk and inline, mixed).

    Call :meth:`parse` with every chunk read from the socket; it returns the
    commands completed so far, each a ``list[bytes]`` (empty requests -- a
    blank inline line, ``*0``, ``*-1`` -- produce nothing, as in Redis).

    Limits (Redis's defaults): ``max_bulk_len`` per argument
    (``proto-max-bulk-len``), ``max_multibulk_len`` arguments per request and
    ``max_inline_len`` bytes per inline request or header line.  An oversized
    header is rejected as soon as the header itself has arrived, before any
    of the data it announces is buffered.  Unlike Redis, a line longer than
    ``max_inline_len`` is refused even when its end arrives in the same read,
    so the outcome never depends on how the stream was split.
    """

    __slots__ = (
        "_args",
        "_args_bytes",
        "_bulk_have",
        "_bulk_len",
        "_bulk_parts",
        "_cparse",
        "_error",
        "_exact_only",
        "_expect_tail",
        "_fast_span",
        "_header_window",
        "_left",
        "_line",
        "_line_kind",
        "_max_bulk",
        "_max_inline",
        "_max_mbulk",
        "_one_span",
        "_reader",
    )

    def __init__(
        self,
        *,
        max_bulk_len: int = DEFAULT_MAX_BULK_LEN,
        max_multibulk_len: int = DEFAULT_MAX_MULTIBULK_LEN,
        max_inline_len: int = DEFAULT_MAX_INLINE_LEN,
    ) -> None:
        self._max_bulk = max_bulk_len
        self._max_mbulk = max_multibulk_len
        self._max_inline = max_inline_len
        self._fast_span = min(max_bulk_len, _MIN_ELEMENT_BYTES * max_multibulk_len)
        self._one_span = min(self._fast_span, _ONE_REQUEST_BYTES)
        # hiredis and _one_request know no line limit: below the longest
        # header, every request goes to the exact parser.
        self._exact_only = max_inline_len < _LONGEST_HEADER
        if self._exact_only:
            self._one_span = 0
        # "$" and up to 20 digits, never more than a header line may hold.
        self._header_window = min(22, max_inline_len + 1)
        # Bound once: a module attribute looked up per read cost a GET a
        # twentieth of its instructions.
        self._cparse: Callable[..., int] | None = _cresp.parse if _cresp is not None else None
        self._reader: Any = _new_reader()
        self._expect_tail = False
        self._error: str | None = None
        # A multibulk in progress: arguments so far and how many are missing.
        self._left = 0
        self._args: list[bytes] = []
        self._args_bytes = 0
        # Waiting for the end of a line (inline request or header).
        self._line: bytearray | None = None
        self._line_kind = _INLINE
        # Waiting for the payload of a bulk argument (plus its CRLF).
        self._bulk_parts: list[bytes] | None = None
        self._bulk_have = 0
        self._bulk_len = 0

    @property
    def idle(self) -> bool:
        """Between requests: no part of one is waiting for more bytes."""
        return self._left == 0 and self._line is None and self._bulk_parts is None

    @property
    def buffered(self) -> int:
        """Bytes received that are not yet part of a returned command.

        The server compares this with its per-client query buffer limit.
        """
        n = self._args_bytes
        if self._line is not None:
            n += len(self._line)
        if self._bulk_parts is not None:
            n += self._bulk_have
        return n

    def parse(self, chunk: bytes | bytearray, lookup: Lookup | None = None) -> list[list[bytes]]:
        """Consume ``chunk``; return every command it completed, in order.

        Raises :class:`ProtocolError` (carrying the commands completed before
        the offending bytes) when the stream is malformed.  With a
        ``lookup`` ``(tables, gate, replies, limit, nil)`` and the C
        extension, the requests ``NAME key`` at the front of ``data`` that it
        can answer are answered into ``replies`` instead of returned: those
        whose lower-case name ``tables`` maps to a :attr:`KeyRead.tables
        <redraft.machine.KeyRead.tables>` and whose key is in none of its
        ``unless`` dicts, with the ``bytes`` value ``values`` holds for it
        or ``nil`` when it holds none, while ``gate()`` allowed it when the
        first came, up to ``limit`` bytes of replies.  Without the extension
        ``lookup`` is ignored: the caller serves those requests itself, with
        the same replies.
        """
        if self._error is not None:
            raise ProtocolError(self._error)
        out: list[list[bytes]] = []
        if not chunk:
            return out
        data = chunk if type(chunk) is bytes else bytes(chunk)
        pos = 0
        if self._left == 0 and self._line is None and self._bulk_parts is None:
            cparse = self._cparse
            if cparse is not None:
                # Between requests: C takes the whole requests up front (in
                # the common case all of them), _run what it leaves.
                pos = cparse(
                    data, 0, out, self._max_bulk, self._max_mbulk, self._max_inline, lookup
                )
                if pos == len(data):
                    return out
            elif self._takes_one(data):
                one = _one_request(data)
                if one is not None:
                    out.append(one)
                    return out
        try:
            if pos:
                self._run(data, pos, out)
            else:
                self._resume(data, out)
        except ProtocolError as e:
            self._fail(e, out)
            raise
        return out

    def _takes_one(self, data: bytes) -> bool:
        """Whether ``data`` is worth trying as exactly one request (the pure-Python fast path).

        Within _fast_span no argument or count can pass the limits; past a
        few KiB (peer batches) the split would mostly be wasted, and so it
        would be for a pipeline (a line starting with "*" after the first),
        which a find rules out for less than a split costs (but more than a
        short request's split).
        """
        return len(data) <= self._one_span and (
            len(data) < _SPLIT_FREELY or data.find(b"\r\n*") < 0
        )

    def _resume(self, data: bytes, out: list[list[bytes]]) -> None:
        """Go on with ``data`` from wherever the last call stopped."""
        pos = 0
        in_multibulk = self._left > 0
        if self._bulk_parts is not None:
            pos = self._resume_bulk(data)
            if pos < 0:
                return
            buf = data
        elif self._line is not None:
            line = self._resume_line(data)
            if line is None:
                return
            buf = line
        else:
            buf = data
        if in_multibulk:
            # Also emits the request when _resume_bulk supplied its last argument.
            pos = self._bulks(buf, pos, out)
            if pos < 0:
                return
        self._run(buf, pos, out)

    def _resume_line(self, data: bytes) -> bytes | None:
        """The line waited for, with ``data`` appended, once it has ended; None while it has not."""
        line = self._line
        assert line is not None
        # An inline request ends at LF; a header line at CR (or at the LF
        # right after a CR that came last time).
        if self._line_kind == _INLINE:
            ready = b"\n" in data
        else:
            ready = b"\r" in data or line.endswith(b"\r")
        line += data
        if not ready:
            if len(line) > self._max_inline:
                raise ProtocolError(_TOO_BIG[self._line_kind])
            return None
        self._line = None
        return bytes(line)

    def _fail(self, e: ProtocolError, out: list[list[bytes]]) -> None:
        self._error = str(e)
        self._reader = _new_reader()
        e.commands = out

    # --- dispatch -----------------------------------------------------------

    def _run(self, buf: bytes, pos: int, out: list[list[bytes]]) -> None:
        n = len(buf)
        cparse = self._cparse
        if cparse is not None:
            # C takes every whole request it can; what it leaves at a "*" is
            # incomplete or one Redis refuses, for the exact parser.
            while pos < n:
                if buf[pos] != _STAR:
                    pos = self._inline(buf, pos, out)
                else:
                    pos = cparse(buf, pos, out, self._max_bulk, self._max_mbulk, self._max_inline)
                    if pos < n and buf[pos] == _STAR:
                        pos = self._multibulk(buf, pos, out)
                if pos < 0:
                    return
            return
        scanned: bytes | None = None
        base = 0
        # The exact parser costs per header, the scan before hiredis per byte:
        # large requests go to the former, small pipelined ones to the latter.
        exact = n - pos > _SMALL_CHUNK or self._exact_only
        while pos < n:
            if buf[pos] != _STAR:
                pos = self._inline(buf, pos, out)
            elif exact:
                start = pos
                pos = self._multibulk(buf, pos, out)
                exact = pos - start >= _LARGE_REQUEST or self._exact_only
            else:
                if scanned is None:
                    base = pos
                    scanned = (buf[pos:] if pos else buf).translate(_SCAN_TABLE)
                pos = self._fast(buf, scanned, base, pos, out)
            if pos < 0:
                return

    def _fast(self, buf: bytes, scanned: bytes, base: int, pos: int, out: list[list[bytes]]) -> int:
        """Parse requests from ``pos`` with hiredis, then one more exactly.

        ``scanned`` is ``buf[base:]`` translated with ``_SCAN_TABLE``.
        Returns the position after the requests parsed, or -1 when the last
        one is incomplete (its state is then saved).
        """
        n = len(buf)
        lo = pos - base
        cut = n - base
        if scanned.find(b"!", lo, cut) >= 0:
            i = scanned.find(b"\r\n!", lo, cut)
            if i >= 0:
                cut = i + 2
            i = scanned.find(b"!000000", lo, cut)
            if i >= 0:
                cut = i
        if scanned.find(b"+", lo, cut) >= 0:
            i = scanned.find(b"\r\n+", lo, cut)
            if i >= 0:
                cut = i + 2
        m = _BIG_ARRAY.search(scanned, lo, cut)
        if m is not None:
            cut = m.start()
        end = base + cut
        if end > pos:
            consumed = self._hiredis(buf, pos, end, out)
            pos += consumed
            if pos >= n:
                return pos
        # The request at pos is one hiredis must not or could not handle.
        if buf[pos] == _STAR:
            return self._multibulk(buf, pos, out)
        return self._inline(buf, pos, out)

    def _hiredis(self, buf: bytes, pos: int, end: int, out: list[list[bytes]]) -> int:
        """Parse ``buf[pos:end]`` with hiredis; return the bytes its requests took.

        What is left after them is an incomplete request, or one hiredis
        refused, for the exact parser.
        """
        # When reads tend to end inside a request, feeding in two parts, split
        # at the last line starting with "*", locates the incomplete request
        # without computing sizes.  Otherwise one part is cheaper.
        mid = buf.rfind(b"\r\n*", pos, end) + 2 if self._expect_tail else 0
        if mid <= pos:
            mid = end
        reader = self._reader
        consumed = -1
        try:
            cmds = _drain(reader, buf, pos, mid)
            if _at_boundary(reader):
                if mid == end:
                    consumed = end - pos
                else:
                    more = _drain(reader, buf, mid, end)
                    cmds += more
                    if _at_boundary(reader):
                        consumed = end - pos
                    else:
                        consumed = mid - pos + _canonical_size(more)
            clean = end - pos <= self._fast_span or self._within_limits(cmds)
        except Exception:
            clean = False
        if not clean:
            cmds = self._good_prefix(buf, pos, end)
            consumed = _canonical_size(cmds)
        elif consumed < 0:
            consumed = _canonical_size(cmds)
        self._expect_tail = consumed != end - pos
        if self._expect_tail:
            # hiredis holds part of a request that the exact parser now takes over.
            self._reader = _new_reader()
        if all(cmds):
            out += cmds
        else:
            out += filter(None, cmds)
        return consumed

    def _within_limits(self, cmds: list[list[bytes]]) -> bool:
        return max(map(len, cmds), default=0) <= self._max_mbulk and (
            max(map(len, chain.from_iterable(cmds)), default=0) <= self._max_bulk
        )

    def _good_prefix(self, buf: bytes, pos: int, end: int) -> list[list[bytes]]:
        """The requests hiredis parses correctly before the first one it does not."""
        reader = _new_reader()
        reader.feed(buf, pos, end - pos)
        good: list[list[bytes]] = []
        try:
            while True:
                cmd = reader.gets()
                if (
                    type(cmd) is not list
                    or len(cmd) > self._max_mbulk
                    or any(type(a) is not bytes or len(a) > self._max_bulk for a in cmd)
                ):
                    break
                good.append(cmd)
        except Exception:
            pass
        return good

    # --- the exact parser (mirrors Redis's networking.c) ---------------------

    def _wait_line(self, buf: bytes, pos: int, kind: int) -> int:
        self._line = bytearray(buf[pos:])
        self._line_kind = kind
        return -1

    def _inline(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        nl = buf.find(b"\n", pos)
        if nl < 0:
            if len(buf) - pos > self._max_inline:
                raise ProtocolError(_TOO_BIG[_INLINE])
            return self._wait_line(buf, pos, _INLINE)
        if nl - pos > self._max_inline:
            raise ProtocolError(_TOO_BIG[_INLINE])
        end = nl - 1 if nl > pos and buf[nl - 1] == _CR else nl
        args = split_inline(buf[pos:end])
        if args:
            out.append(args)
        return nl + 1

    def _header(self, buf: bytes, pos: int, kind: int) -> tuple[int, int]:
        """Find a header line at ``pos``; return (its CR position, the value).

        Returns (-1, 0) when the line is incomplete.  Like Redis, the line
        ends at the first CR and the byte after it is skipped unchecked.
        """
        cr = buf.find(b"\r", pos)
        if cr < 0 or cr + 1 >= len(buf):
            if (cr if cr >= 0 else len(buf)) - pos > self._max_inline:
                raise ProtocolError(_TOO_BIG[kind])
            return -1, 0
        if cr - pos > self._max_inline:
            raise ProtocolError(_TOO_BIG[kind])
        if kind == _BULK_HEADER and buf[pos] != _DOLLAR:
            got = chr(buf[pos]).replace("\r", " ").replace("\n", " ")
            raise ProtocolError(f"Protocol error: expected '$', got '{got}'")
        value = _string2ll(buf[pos + 1 : cr])
        if kind == _MBULK_HEADER:
            if value is None or value > self._max_mbulk:
                raise ProtocolError(_BAD_MBULK)
        elif value is None or value < 0 or value > self._max_bulk:
            raise ProtocolError(_BAD_BULK)
        return cr, value

    def _multibulk(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        cr, count = self._header(buf, pos, _MBULK_HEADER)
        if cr < 0:
            return self._wait_line(buf, pos, _MBULK_HEADER)
        pos = cr + 2
        if count <= 0:
            return pos
        self._left = count
        self._args = []
        self._args_bytes = 0
        return self._bulks(buf, pos, out)

    def _bulks(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        n = len(buf)
        args = self._args
        find = buf.find
        while self._left:
            if pos >= n:
                return -1
            # Fast path for a canonical header with its whole argument present;
            # _header below gives anything else Redis's exact treatment.
            cr = find(b"\r", pos, pos + self._header_window)
            if cr > pos + 1 and buf[pos] == _DOLLAR:
                digits = buf[pos + 1 : cr]
                if digits.isdigit() and (digits[0] != 48 or cr == pos + 2):
                    size = int(digits)
                    end = cr + 2 + size
                    if size <= self._max_bulk and end + 2 <= n:
                        args.append(buf[cr + 2 : end])
                        self._args_bytes += size
                        self._left -= 1
                        pos = end + 2
                        continue
            cr, size = self._header(buf, pos, _BULK_HEADER)
            if cr < 0:
                return self._wait_line(buf, pos, _BULK_HEADER)
            pos = cr + 2
            end = pos + size
            if end + 2 > n:
                self._bulk_parts = [buf[pos:]] if pos < n else []
                self._bulk_have = n - pos if pos < n else 0
                self._bulk_len = size
                return -1
            args.append(buf[pos:end])
            self._args_bytes += size
            self._left -= 1
            pos = end + 2
        out.append(args)
        self._args = []
        self._args_bytes = 0
        return pos

    def _resume_bulk(self, data: bytes) -> int:
        """Add ``data`` to a pending bulk; return where ``data`` continues, or -1."""
        parts = self._bulk_parts
        assert parts is not None
        want = self._bulk_len + 2
        have = self._bulk_have + len(data)
        if have < want:
            parts.append(data)
            self._bulk_have = have
            return -1
        k = want - self._bulk_have
        parts.append(data if k == len(data) else data[:k])
        # Drop the two trailer bytes, then copy the payload exactly once.
        drop = 2
        while drop:
            last = parts.pop()
            if len(last) > drop:
                parts.append(last[:-drop])
                drop = 0
            else:
                drop -= len(last)
        self._args.append(b"".join(parts))
        self._args_bytes += self._bulk_len
        self._bulk_parts = None
        self._bulk_have = 0
        self._left -= 1
        return k


# --------------------------------------------------------------------------
# Reply encoding
# --------------------------------------------------------------------------

CRLF: Final = b"\r\n"
OK_REPLY: Final = b"+OK\r\n"
NULL_BULK: Final = b"$-1\r\n"

_SMALL: Final = 1024
_INT_REPLIES: Final = [b":%d\r\n" % i for i in range(_SMALL)]
_BULK_HEADERS: Final = [b"$%d\r\n" % i for i in range(_SMALL)]
_ARRAY_HEADERS: Final = [b"*%d\r\n" % i for i in range(_SMALL)]
# Below this size a bulk is formatted in one piece; above it the payload is
# appended as is, to avoid an extra copy.
_INLINE_BULK: Final = 512
_STATUS_CACHE: Final[dict[str, bytes]] = {OK.text: OK_REPLY}
_STATUS_CACHE_MAX: Final = 256


def format_float(value: float) -> bytes:
    """A double as Redis 7.2+ replies it: shortest digits that round-trip, ``%.17g`` layout.

    ``3.0`` -> ``3``, ``3.5`` -> ``3.5``, ``1e16`` -> ``10000000000000000``,
    ``1e17`` -> ``1e+17``, ``0.0001`` -> ``0.0001``, ``1e-05`` -> ``1e-05``,
    infinities -> ``inf`` / ``-inf``, NaN -> ``nan``.
    """
    r = repr(value)
    if r.endswith(".0"):
        r = r[:-2]
    elif "e+16" in r:
        # repr goes to exponent form one power of ten earlier than %.17g.
        r = format(Decimal(r), "f")
    return r.encode()


def _header(prefix: bytes, table: list[bytes], n: int) -> bytes:
    return table[n] if n < _SMALL else b"%b%d\r\n" % (prefix, n)


def _status_bytes(text: str) -> bytes:
    b = _STATUS_CACHE.get(text)
    if b is None:
        b = b"+" + text.encode() + CRLF
        if len(_STATUS_CACHE) < _STATUS_CACHE_MAX:
            _STATUS_CACHE[text] = b
    return b


def _error_bytes(text: str) -> bytes:
    return b"-" + text.encode("utf-8", "replace") + CRLF


def encode_into(buf: bytearray, value: Any, cmd_name: str = "") -> None:
    """Append the RESP2 encoding of ``value`` to ``buf``.

    Mapping: ``None`` -> null bulk; ``bytes`` / ``bytearray`` / ``memoryview``
    -> bulk; ``str`` -> bulk of its UTF-8; ``bool`` -> ``:1`` / ``:0``;
    ``int`` -> integer; ``float`` -> bulk of :func:`format_float`;
    ``list`` / ``tuple`` / ``set`` / ``frozenset`` -> array; ``dict`` -> flat
    array of key, value pairs; :class:`~redraft.machine.Status` -> ``+text``;
    :class:`~redraft.machine.Double` -> bulk of its text;
    :class:`~redraft.machine.Pairs` -> flat array of its halves;
    :class:`~redraft.machine.Verbatim` -> bulk of its text;
    :class:`ErrorReply` -> ``-text``; an exception -> ``-`` +
    :func:`redraft.errors.error_text` (``cmd_name`` names the command for
    it).  Containers are encoded recursively.  Anything else raises
    :class:`TypeError` (``buf`` may then hold part of the value).
    """
    t = type(value)
    if t is bytes:
        n = len(value)
        if n < _INLINE_BULK:
            buf += b"$%d\r\n%b\r\n" % (n, value)
        else:
            buf += b"$%d\r\n" % n
            buf += value
            buf += CRLF
    elif value is OK:
        buf += OK_REPLY
    elif t is int:
        buf += _INT_REPLIES[value] if 0 <= value < _SMALL else b":%d\r\n" % value
    elif value is None:
        buf += NULL_BULK
    elif t is list or t is tuple:
        buf += _header(b"*", _ARRAY_HEADERS, len(value))
        # MGET, LRANGE and the like: flat arrays of short strings and numbers.
        for item in value:
            it = type(item)
            if it is bytes and len(item) < _INLINE_BULK:
                buf += b"$%d\r\n%b\r\n" % (len(item), item)
            elif item is None:
                buf += NULL_BULK
            elif it is int and 0 <= item < _SMALL:
                buf += _INT_REPLIES[item]
            else:
                encode_into(buf, item, cmd_name)
    elif t is str:
        encode_into(buf, value.encode(), cmd_name)
    elif t is Status:
        buf += _status_bytes(value.text)
    elif t is ErrorReply:
        buf += _error_bytes(value.text)
    else:
        _encode_other(buf, value, cmd_name)


def _encode_other(buf: bytearray, value: Any, cmd_name: str) -> None:
    if isinstance(value, Double | Pairs | Verbatim):
        _encode_shaped(buf, value, cmd_name)
    elif isinstance(value, bool):
        buf += b":1\r\n" if value else b":0\r\n"
    elif isinstance(value, int):
        buf += b":%d\r\n" % value
    elif isinstance(value, float):
        encode_into(buf, format_float(value), cmd_name)
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        buf += _header(b"$", _BULK_HEADERS, len(data))
        buf += data
        buf += CRLF
    elif isinstance(value, str):
        encode_into(buf, value.encode(), cmd_name)
    elif isinstance(value, dict):
        buf += _header(b"*", _ARRAY_HEADERS, 2 * len(value))
        for k, v in value.items():
            encode_into(buf, k, cmd_name)
            encode_into(buf, v, cmd_name)
    elif isinstance(value, list | tuple | set | frozenset):
        buf += _header(b"*", _ARRAY_HEADERS, len(value))
        for item in value:
            encode_into(buf, item, cmd_name)
    elif isinstance(value, Status):
        buf += _status_bytes(value.text)
    elif isinstance(value, ErrorReply):
        buf += _error_bytes(value.text)
    elif isinstance(value, BaseException):
        buf += _error_bytes(error_text(value, cmd_name))
    elif value is NULL_ARRAY:
        buf += b"*-1\r\n"
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as a RESP reply")


def _encode_shaped(buf: bytearray, value: Double | Pairs | Verbatim, cmd_name: str) -> None:
    """RESP2's forms: a bulk string of a :class:`~redraft.machine.Double`'s text, one
    flat array of a :class:`~redraft.machine.Pairs`' halves, a bulk string of a
    :class:`~redraft.machine.Verbatim`'s text."""
    if isinstance(value, Double):
        text = value.text
        buf += b"$%d\r\n%b\r\n" % (len(text), text)
        return
    if isinstance(value, Verbatim):
        text = value.text
        buf += _header(b"$", _BULK_HEADERS, len(text))
        buf += text
        buf += CRLF
        return
    pairs: list[Any] = value.pairs  # items checked below, not assumed pairs
    buf += _header(b"*", _ARRAY_HEADERS, 2 * len(pairs))
    for pair in pairs:
        if len(pair) != 2:
            # Checked, not unpacked: the compiled build would raise a TypeError.
            raise ValueError(f"Pairs holds {len(pair)} items where a pair belongs")
        first, second = pair
        if type(first) is bytes and len(first) < _INLINE_BULK:
            buf += b"$%d\r\n%b\r\n" % (len(first), first)
        else:
            encode_into(buf, first, cmd_name)
        if type(second) is Double:
            text = second.text
            buf += b"$%d\r\n%b\r\n" % (len(text), text)
        else:
            encode_into(buf, second, cmd_name)


def _encode_py(value: Any, cmd_name: str = "") -> bytes:
    """The RESP2 encoding of one reply value (see :func:`encode_into`)."""
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%b\r\n" % (len(value), value)
    if value is OK:
        return OK_REPLY
    if t is int and 0 <= value < _SMALL:
        reply: bytes = _INT_REPLIES[value]
        return reply
    if value is None:
        return NULL_BULK
    buf = bytearray()
    encode_into(buf, value, cmd_name)
    return bytes(buf)


NULL3: Final = b"_\r\n"


def encode3_into(buf: bytearray, value: Any, cmd_name: str = "") -> None:
    """Append the RESP3 encoding of ``value`` to ``buf`` (after ``HELLO 3``).

    As :func:`encode_into`, except: ``None`` -> ``_`` (null), ``float`` and
    :class:`~redraft.machine.Double` -> ``,`` (double), ``dict`` -> ``%``
    (map), ``set`` / ``frozenset`` -> ``~`` (set), :class:`~redraft.machine.Pairs`
    -> an array of two-element arrays, :class:`~redraft.machine.Verbatim` ->
    ``=`` (verbatim string).  ``bool`` stays an integer, as redraft documents
    for both protocols.
    """
    t = type(value)
    if t is bytes or t is int or t is Status or t is ErrorReply or t is str:
        encode_into(buf, value, cmd_name)
    elif value is None or value is NULL_ARRAY:
        buf += NULL3
    elif t is list or t is tuple:
        buf += _header(b"*", _ARRAY_HEADERS, len(value))
        for item in value:
            encode3_into(buf, item, cmd_name)
    elif isinstance(value, Double):
        buf += b",%b\r\n" % value.text
    elif isinstance(value, Pairs | Verbatim):
        _encode_shaped3(buf, value, cmd_name)
    elif isinstance(value, bool | int):
        encode_into(buf, value, cmd_name)
    elif isinstance(value, float):
        buf += b"," + format_float(value) + CRLF
    elif isinstance(value, dict):
        buf += b"%%%d\r\n" % len(value)
        for k, v in value.items():
            encode3_into(buf, k, cmd_name)
            encode3_into(buf, v, cmd_name)
    elif isinstance(value, set | frozenset):
        buf += b"~%d\r\n" % len(value)
        for item in value:
            encode3_into(buf, item, cmd_name)
    elif isinstance(value, list | tuple):
        buf += _header(b"*", _ARRAY_HEADERS, len(value))
        for item in value:
            encode3_into(buf, item, cmd_name)
    else:
        encode_into(buf, value, cmd_name)


def _encode_shaped3(buf: bytearray, value: Pairs | Verbatim, cmd_name: str) -> None:
    """RESP3's forms of :class:`~redraft.machine.Pairs` and :class:`~redraft.machine.Verbatim`
    (``=``, the length counting the format and its colon, ``txt:`` and the text)."""
    if isinstance(value, Pairs):
        _encode_pairs3(buf, value.pairs, cmd_name)
        return
    text = value.text
    buf += b"=%d\r\n%b:" % (len(text) + 4, value.format)
    buf += text
    buf += CRLF


def _encode_pairs3(buf: bytearray, pairs: list[tuple[Any, Any]], cmd_name: str) -> None:
    """RESP3's form of :class:`~redraft.machine.Pairs`: an array of two-element arrays."""
    buf += _header(b"*", _ARRAY_HEADERS, len(pairs))
    for first, second in pairs:
        buf += b"*2\r\n"
        if type(first) is bytes and len(first) < _INLINE_BULK:
            buf += b"$%d\r\n%b\r\n" % (len(first), first)
        else:
            encode3_into(buf, first, cmd_name)
        if type(second) is Double:
            buf += b",%b\r\n" % second.text
        else:
            encode3_into(buf, second, cmd_name)


def encode_push(items: Sequence[Any]) -> bytes:
    """A RESP3 push frame (``>N``) of ``items``, each encoded as :func:`encode3_into` does."""
    buf = bytearray(_header(b">", _PUSH_HEADERS, len(items)))
    for item in items:
        encode3_into(buf, item)
    return bytes(buf)


_PUSH_HEADERS: Final = [b">%d\r\n" % i for i in range(_SMALL)]


def _encode3_py(value: Any, cmd_name: str = "") -> bytes:
    """The RESP3 encoding of one reply value (see :func:`encode3_into`)."""
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%b\r\n" % (len(value), value)
    if value is OK:
        return OK_REPLY
    if t is int and 0 <= value < _SMALL:
        reply: bytes = _INT_REPLIES[value]
        return reply
    if value is None:
        return NULL3
    buf = bytearray()
    encode3_into(buf, value, cmd_name)
    return bytes(buf)


run_end: Callable[[list[list[bytes]], int, int, dict[Any, Any], object], int] = _run_end_py
"""``run_end(cmds, i, n, table, value)``: where a run of one command's requests ends (see
:func:`_run_end_py`)."""
encode: Callable[..., bytes] = _encode_py
"""``encode(value, cmd_name="")``: the RESP2 encoding of one reply value (see :func:`encode_into`)."""
encode3: Callable[..., bytes] = _encode3_py
"""``encode3(value, cmd_name="")``: the RESP3 encoding of one reply value (see :func:`encode3_into`)."""
if _cresp is not None:
    # The C encoders answer bytes, None, ints and OK, and hand the rest to these.
    _cresp.configure(OK, OK_REPLY, NULL_BULK, NULL3, _encode_py, _encode3_py)
    encode = _cresp.encode
    encode3 = _cresp.encode3
    run_end = _cresp.run_end


def encode_many(values: Iterable[Any], cmd_name: str = "") -> bytes:
    """The concatenated encodings of ``values``: one buffer for one write."""
    buf = bytearray()
    for v in values:
        encode_into(buf, v, cmd_name)
    return bytes(buf)


def encode_error(exc: BaseException | ErrorReply, cmd_name: str) -> bytes:
    """The error reply for an exception raised while running ``cmd_name``."""
    if isinstance(exc, ErrorReply):
        return _error_bytes(exc.text)
    return _error_bytes(error_text(exc, cmd_name))


# --------------------------------------------------------------------------
# Client side
# --------------------------------------------------------------------------


def encode_command(args: Sequence[bytes | bytearray | memoryview | str | int]) -> bytes:
    """A multibulk request for ``args`` (``str`` as UTF-8, ``int`` in decimal)."""
    parts = [_header(b"*", _ARRAY_HEADERS, len(args))]
    append = parts.append
    for a in args:
        if type(a) is bytes:
            data = a
        elif isinstance(a, str):
            data = a.encode()
        elif isinstance(a, int) and not isinstance(a, bool):
            data = b"%d" % a
        elif isinstance(a, bytes | bytearray | memoryview):
            data = bytes(a)
        else:
            raise TypeError(f"cannot send {type(a).__name__} as a command argument")
        n = len(data)
        if n < _INLINE_BULK:
            append(b"$%d\r\n%b\r\n" % (n, data))
        else:
            append(b"$%d\r\n" % n)
            append(data)
            append(CRLF)
    return b"".join(parts)


class ReplyParser:
    """Incremental parser of replies, backed by hiredis.

    Bulk and simple strings come back as ``bytes``, integers as ``int``,
    arrays as ``list``, null as ``None`` and error replies as
    :class:`ErrorReply` values (returned, not raised).  Malformed input
    raises :class:`ProtocolError`.
    """

    __slots__ = ("_reader",)

    def __init__(self) -> None:
        # hiredis only calls replyError to build the value it returns; it need
        # not be an exception class, whatever its stub says.
        self._reader: Any = hiredis.Reader(
            protocolError=ProtocolError,
            replyError=cast(Any, ErrorReply),
            notEnoughData=_NOT_ENOUGH,
        )

    def feed(self, data: bytes) -> None:
        """Add received bytes."""
        self._reader.feed(data)

    def gets(self) -> list[Any]:
        """Every reply completed so far, in order (possibly none)."""
        return list(iter(self._reader.gets, _NOT_ENOUGH))

    def parse(self, data: bytes) -> list[Any]:
        """:meth:`feed` then :meth:`gets`."""
        self._reader.feed(data)
        return list(iter(self._reader.gets, _NOT_ENOUGH))
