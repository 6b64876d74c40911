"""Structured logging on the standard library.

Log calls pass fields with ``extra=``: ``log.info("publish started", extra={"stream": sid})``.
The text format prints ``time level logger message key=value ...``; the JSON format prints
one object per line, ready for a log shipper.

``RequestErrorFilter`` keeps an HTTP server's error log small under a flood of malformed
requests: one line each, no traceback, at most ``rate`` lines a second.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from .httpbody import describe_http_error

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


def _quote(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return json.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [
            f"{ts}.{int(record.msecs):03d}",
            f"{record.levelname.lower():7}",
            record.name,
            record.getMessage(),
        ]
        parts += [f"{k}={_quote(v)}" for k, v in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        obj.update(_fields(record))
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str)


class RequestErrorFilter(logging.Filter):
    """For aiohttp's server logger (``aiohttp.server``, or the ``logger=`` given to a runner).

    A request aiohttp could not parse (request line, header, chunked framing: any
    ``HttpProcessingError``) becomes one WARNING line, ``malformed HTTP request peer=...
    error=...``, without the traceback aiohttp attaches; a handler's own failure (a 500) keeps
    its traceback, as it is a bug. Past ``rate`` lines in a second, lines are dropped and
    counted: the next line that passes carries ``suppressed=N``."""

    def __init__(self, rate: int = 10, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.rate = rate
        self._clock = clock
        self._window = -1.0
        self._lines = 0
        self._held = 0  # suppressed since the last line that passed
        self.suppressed = 0  # in total

    def filter(self, record: logging.LogRecord) -> bool:
        now = self._clock()
        if self._window < 0 or now - self._window >= 1.0:
            self._window, self._lines = now, 0
        if self._lines >= self.rate:
            self._held += 1
            self.suppressed += 1
            return False
        self._lines += 1
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            args = record.args if isinstance(record.args, tuple) else ()
            record.peer = str(args[0]) if args else "?"
            record.error = f"{type(exc).__name__}: {describe_http_error(exc)}"
            record.msg, record.args = "malformed HTTP request", ()
            record.exc_info, record.exc_text = None, None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        if self._held:
            record.suppressed = self._held
            self._held = 0
        return True


def quiet_request_errors(logger: logging.Logger, rate: int = 10) -> RequestErrorFilter:
    """Install a ``RequestErrorFilter`` on ``logger`` once; return the one installed."""
    for existing in logger.filters:
        if isinstance(existing, RequestErrorFilter):
            return existing
    new = RequestErrorFilter(rate)
    logger.addFilter(new)
    return new


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    quiet_request_errors(logging.getLogger("aiohttp.server"))  # every aiohttp server in here
