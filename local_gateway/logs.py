"""No sign-in token ever reaches a log, whatever library writes it: redaction by content.

A browser offers its Cognito ID token as the subprotocol ``bearer.<token>`` (PROTOCOL.md),
so the token is in the handshake's headers, in the authorizer's and ``$connect``'s
events, and in whatever a library chooses to say about them (aiohttp's warning that no
offered subprotocol overlaps quotes them all). Rather than hide each such message by
its wording, which a library can change, every line is searched for what a token looks
like and that part is replaced before it is written:

- a bearer subprotocol: ``bearer.`` followed by anything a token could hold;
- a JWT (or a Cognito refresh token, a JWE): a base64url JSON header (``eyJ``, the
  encoding of ``{"``) and two or more dot-separated base64url segments.

Where it is installed:

- every log record of the gateway's process, as it is made (``install_record_factory``,
  from ``local_gateway.stage`` on import, so a gateway run inside another program or a
  test runner is covered too): whatever logger made it (the gateway's, aiohttp's,
  moto's, werkzeug's, asyncio's), its ``%`` arguments and its traceback included;
- the gateway's logging (``install``, ``python -m local_gateway``): that, a filter on
  every handler of the root logger, and the process's ``sys.stdout``/``sys.stderr``
  wrapped (``RedactingStream``), for what bypasses logging (``print``, ``warnings``, an
  uncaught traceback, a handler a library built over ``sys.stderr``);
- each function's execution environment (``redact_process_output``): its
  ``sys.stdout``/``sys.stderr`` wrapped before the handler module is imported, so
  Powertools' JSON lines, ``print`` and tracebacks are searched too (the environments
  write to the gateway's terminal directly, not through the gateway).
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
from typing import Any, TextIO

REDACTED = "<redacted>"

# A bearer subprotocol (case as offered) and a JWT/JWE: header "eyJ…" (base64url of '{"')
# then two to four more base64url segments (the last may be empty: alg "none").
_B64URL = r"[A-Za-z0-9_-]"
SECRET = re.compile(
    r"(?i:bearer)\.[A-Za-z0-9._~+/=%-]+"
    rf"|eyJ{_B64URL}*(?:\.{_B64URL}*){{2,4}}"
)


def redact(text: str) -> str:
    """``text`` with every bearer subprotocol and JWT-shaped string replaced."""
    return SECRET.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    found = match.group(0)
    if found[:7].lower() == "bearer.":
        return found[:7] + REDACTED
    return REDACTED


def contains_secret(text: str) -> bool:
    return SECRET.search(text) is not None


class RedactingFilter(logging.Filter):
    """Rewrites a record whose text (message, arguments, traceback, stack) holds a token.

    Always lets the record through: a line with the token replaced is still worth
    reading (aiohttp's subprotocol warning, a traceback quoting a header).
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: logging reports it; redact what is there
            message = f"{record.msg} {record.args}"
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted here, once, so the handler writes the redacted text (a handler
            # formats exc_info only when exc_text is empty).
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class RedactingStream(io.TextIOBase):
    """A text stream that writes whole lines, redacted, to another.

    Keeps an unfinished line until its newline (or a flush) so a token written in two
    pieces is still found; ``flush`` writes what is kept.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            data = self._pending + text
            head, newline, self._pending = data.rpartition("\n")
            if newline:
                self.stream.write(redact(head + newline))
            if len(self._pending) > 1 << 16:  # a line without end: do not hold it forever
                self.stream.write(redact(self._pending))
                self._pending = ""
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.stream.write(redact(self._pending))
                self._pending = ""
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.stream, "encoding", "utf-8")

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self.stream, "errors", None)

    @property
    def buffer(self) -> Any:
        # Bytes written past the text layer are not searched: nothing here writes any,
        # and a library that does so is writing binary, not a log line.
        return getattr(self.stream, "buffer", None)


def redact_process_output() -> None:
    """Wrap this process's ``sys.stdout``/``sys.stderr`` (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream))


_FILTER = RedactingFilter()


def install_record_factory() -> None:
    """Redact every log record as it is made, whatever logger makes it and whichever
    handlers (the gateway's, a test runner's, an embedding program's) then write it.
    Installed once per process, over the factory already there."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_tokens", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _FILTER.filter(record)
        return record

    factory.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def install(level: int = logging.INFO, fmt: str = "%(asctime)s.%(msecs)03d %(message)s",
            datefmt: str = "%H:%M:%S") -> None:
    """The gateway's logging: lines to (redacted) stdout, every record and every root
    handler filtered."""
    install_record_factory()
    redact_process_output()
    logging.basicConfig(level=level, format=fmt, datefmt=datefmt, stream=sys.stdout)
    filter_root_handlers()


def filter_root_handlers() -> None:
    """Put the redacting filter on every handler the root logger has (idempotent)."""
    for handler in logging.getLogger().handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
