"""Log levels in Redis's vocabulary (quiet, warning, notice, verbose, debug)."""

from __future__ import annotations

import logging
import os
import sys

VERBOSE = 15
logging.addLevelName(VERBOSE, "VERBOSE")

_LEVELS = {
    "quiet": logging.ERROR,
    "warning": logging.WARNING,
    "notice": logging.INFO,
    "verbose": VERBOSE,
    "debug": logging.DEBUG,
}


def setup_logging(level: str) -> None:
    """Route redraft's logs to stderr at ``level`` unless the application configured logging."""
    logger = logging.getLogger("redraft")
    logger.setLevel(_LEVELS[level])
    if logging.getLogger().handlers or logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter(
            f"{os.getpid()}:%(asctime)s.%(msecs)03d %(levelname).1s %(message)s",
            datefmt="%d %b %H:%M:%S",
        )
    )
    logger.addHandler(handler)
    logger.propagate = False
