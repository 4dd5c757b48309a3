"""redraft's version (the one place it is written; pyproject reads it from here)."""

VERSION = "0.1.0"

REDIS_COMPAT_VERSION = "7.0.0"
"""The Redis version redraft reports to clients (HELLO, INFO): the protocol it speaks."""
