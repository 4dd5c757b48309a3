"""Hypothesis strategies: hash commands (HSET, HGET, ...), over :mod:`.strategies`' keys and pools."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import strategies as st

from tests.differential.strategies import Cmd

FAMILIES: list[Callable[[], st.SearchStrategy[Cmd]]] = []
"""This module's families of commands; :func:`.strategies.all_families` adds them."""
