"""Log levels in Redis's vocabulary (quiet, warning, notice, verbose, debug), as text or JSON lines."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

VERBOSE = 15
logging.addLevelName(VERBOSE, "VERBOSE")

_LEVELS = {
    "quiet": logging.ERROR,
    "warning": logging.WARNING,
    "notice": logging.INFO,
    "verbose": VERBOSE,
    "debug": logging.DEBUG,
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: what log collectors (Loki, Elastic...) ingest.

    Fields: ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``,
    ``message``, ``pid``, and ``exception`` (the traceback as text) when the
    record carries one.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info and not record.exc_text:
            # Cached on the record as the text formatter does, for other handlers.
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii (the default) keeps each record on one line whatever it holds.
        return json.dumps(line, default=str)


def setup_logging(level: str, fmt: str = "text") -> None:
    """Route redraft's logs to stderr at ``level`` unless the application configured logging.

    ``fmt`` is ``"text"`` (Redis-like lines) or ``"json"`` (:class:`JsonFormatter`).
    """
    logger = logging.getLogger("redraft")
    logger.setLevel(_LEVELS[level])
    if logging.getLogger().handlers or logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                f"{os.getpid()}:%(asctime)s.%(msecs)03d %(levelname).1s %(message)s",
                datefmt="%d %b %H:%M:%S",
            )
        )
    logger.addHandler(handler)
    logger.propagate = False
