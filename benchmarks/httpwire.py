"""Just enough HTTP/1.1 framing (RFC 9112 §6) for the benchmark's own peers.

The fast upstream and the load generator talk to well-behaved peers on loopback (nginx,
aiohttp, wrk, each other), so this module only finds where one message ends: the head ends at
the first CRLFCRLF, the body is ``Content-Length`` bytes or a chunked body (RFC 9112 §7.1).
Anything it cannot frame raises ``FramingError`` and the caller drops the connection.
"""

from __future__ import annotations

from typing import NamedTuple

_HEAD_END = b"\r\n\r\n"


class FramingError(ValueError):
    pass


class Message(NamedTuple):
    start_line: bytes
    head: bytes
    body: bytes
    end: int


def header(head: bytes, name: bytes) -> bytes | None:
    """The value of the header ``name`` (lower case) in ``head``, or None."""
    start = head.lower().find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = head.find(b"\r\n", start)
    return head[start : end if end >= 0 else len(head)].strip()


def _chunked_end(buf: bytes | bytearray, pos: int) -> int | None:
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError as exc:
            raise FramingError(f"bad chunk size {size_text!r}") from exc
        if size == 0:
            trailer_end = buf.find(b"\r\n", line_end + 2)
            if trailer_end < 0:
                return None
            if trailer_end == line_end + 2:
                return trailer_end + 2
            end = buf.find(_HEAD_END, line_end)
            return None if end < 0 else end + 4
        pos = line_end + 2 + size + 2
        if pos > len(buf):
            return None


def _dechunk(raw: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while True:
        line_end = raw.index(b"\r\n", pos)
        size = int(raw[pos:line_end].split(b";", 1)[0].strip(), 16)
        if size == 0:
            return bytes(out)
        out += raw[line_end + 2 : line_end + 2 + size]
        pos = line_end + 2 + size + 2


def parse(buf: bytes | bytearray, start: int = 0, *, response: bool = False) -> Message | None:
    """The message at ``buf[start:]``, or None while it is incomplete."""
    head_end = buf.find(_HEAD_END, start)
    if head_end < 0:
        if len(buf) - start > 65536:
            raise FramingError("head too long")
        return None
    head = bytes(buf[start:head_end])
    start_line = head.split(b"\r\n", 1)[0]
    body_start = head_end + 4
    if response and (start_line[9:10] == b"1" or start_line[9:12] in (b"204", b"304")):
        return Message(start_line, head, b"", body_start)
    encoding = header(head, b"transfer-encoding")
    if encoding is not None:
        if encoding.lower() != b"chunked":
            raise FramingError(f"transfer-encoding {encoding!r}")
        end = _chunked_end(buf, body_start)
        if end is None:
            return None
        return Message(start_line, head, _dechunk(bytes(buf[body_start:end])), end)
    length_text = header(head, b"content-length")
    length = 0
    if length_text is not None:
        try:
            length = int(length_text)
        except ValueError as exc:
            raise FramingError(f"content-length {length_text!r}") from exc
    elif response:
        raise FramingError("response without a length")
    end = body_start + length
    if end > len(buf):
        return None
    return Message(start_line, head, bytes(buf[body_start:end]), end)


def status_of(start_line: bytes) -> int:
    try:
        return int(start_line[9:12])
    except ValueError as exc:
        raise FramingError(f"status line {start_line!r}") from exc
