"""Jepsen-style tooling: record client histories and check them for linearizability."""

from .history import History, Kind, Op, Outcome, Recording, dump_ops, load_ops, read_ops, write_ops
from .linearizability import (
    CheckResult,
    CounterCheck,
    Counterexample,
    FinalValueCheck,
    KeyResult,
    Verdict,
    check_counter,
    check_final_value,
    check_history,
    check_key,
)

__all__ = [
    "CheckResult",
    "CounterCheck",
    "Counterexample",
    "FinalValueCheck",
    "History",
    "KeyResult",
    "Kind",
    "Op",
    "Outcome",
    "Recording",
    "Verdict",
    "check_counter",
    "check_final_value",
    "check_history",
    "check_key",
    "dump_ops",
    "load_ops",
    "read_ops",
    "write_ops",
]
