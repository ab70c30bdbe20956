"""API Gateway's per-frame size limit, which aiohttp does not have.

API Gateway caps a WebSocket *frame* at 32 KB and a *message* (its frames reassembled)
at 128 KB. aiohttp's ``max_msg_size`` is the second limit only, and browsers send every
message as one frame, so without the first a 40 KB message from the page would work
locally and be refused on AWS. This module watches frame headers on the byte stream in
front of aiohttp's parser and fails the connection with close code 1009 like aiohttp's
own too-big error (aiohttp then sends the close frame and the gateway runs
``$disconnect`` with 1009).

It hooks aiohttp internals (``protocol._payload_parser``): if a future aiohttp moves
them, ``install`` returns False, the gateway logs a warning, and only the message
limit is enforced (``tests/gateway`` checks the frame limit, so the suite will say so).
"""

from __future__ import annotations

from typing import Any

from aiohttp import WSCloseCode
from aiohttp.http_websocket import WebSocketError

_CONTROL_OPCODES = frozenset({0x8, 0x9, 0xA})


class FrameSizeGuard:
    """Pass bytes to aiohttp's parser, failing on any data frame over ``max_frame``."""

    def __init__(self, inner: Any, queue: Any, max_frame: int) -> None:
        self._inner = inner
        self._queue = queue
        self._max_frame = max_frame
        self._header = bytearray()  # bytes of the frame header being read
        self._skip = 0  # payload bytes of the current frame still to pass
        self._tripped = False

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._tripped:
            return True, b""
        if not self._frames_ok(memoryview(data)):
            self._tripped = True
            self._queue.set_exception(
                WebSocketError(
                    WSCloseCode.MESSAGE_TOO_BIG,
                    f"Frame exceeds the {self._max_frame}-byte frame limit",
                )
            )
            return True, b""
        return self._inner.feed_data(data)

    def _frames_ok(self, data: memoryview) -> bool:
        pos = 0
        while pos < len(data):
            if self._skip:
                step = min(self._skip, len(data) - pos)
                self._skip -= step
                pos += step
                continue
            self._header.append(data[pos])
            pos += 1
            needed = self._header_length()
            if needed is None or len(self._header) < needed:
                continue
            opcode = self._header[0] & 0x0F
            length = self._payload_length()
            self._header.clear()
            if opcode not in _CONTROL_OPCODES and length > self._max_frame:
                return False
            self._skip = length
        return True

    def _header_length(self) -> int | None:
        if len(self._header) < 2:
            return None
        second = self._header[1]
        extra = {126: 2, 127: 8}.get(second & 0x7F, 0)
        return 2 + extra + (4 if second & 0x80 else 0)

    def _payload_length(self) -> int:
        flag = self._header[1] & 0x7F
        if flag == 126:
            return int.from_bytes(self._header[2:4], "big")
        if flag == 127:
            return int.from_bytes(self._header[2:10], "big")
        return flag


def install(request: Any, ws: Any, max_frame: int) -> bool:
    """Put a FrameSizeGuard in front of ``ws``'s parser (call right after prepare)."""
    protocol = getattr(request, "protocol", None)
    inner = getattr(protocol, "_payload_parser", None)
    queue = getattr(ws, "_reader", None)
    if inner is None or queue is None or not hasattr(queue, "set_exception"):
        return False
    protocol._payload_parser = FrameSizeGuard(inner, queue, max_frame)
    return True
