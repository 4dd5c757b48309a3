"""Redis glob patterns: moved to :mod:`redraft.globmatch` (pub/sub uses them too); kept here
for the examples and code that import them from this place."""

from __future__ import annotations

from redraft.globmatch import Matcher, compile_glob, glob_match

__all__ = ["Matcher", "compile_glob", "glob_match"]
