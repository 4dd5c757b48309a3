"""A deterministic simulator that checks the Raft consensus core.

Run ``python -m tests.sim --help`` for the command line.  The pieces:

* :mod:`tests.sim.cluster`: the simulated cluster (:class:`Sim`): cores,
  durable stores, state machines, a faulty network and virtual time;
* :mod:`tests.sim.checker`: Raft's safety properties, checked after every step;
* :mod:`tests.sim.scenario`: seeded random workloads and faults, then healing
  and liveness checks (:func:`run_seed`);
* :mod:`tests.sim.mutations`: deliberately broken cores (and a broken Ready
  driver) that the simulator must catch.
"""

from tests.sim.checker import Checker, Violation
from tests.sim.cluster import NetConfig, Sim, SimNode, Write
from tests.sim.scenario import (
    DEFAULT_STEPS,
    PROFILE_NAMES,
    Outcome,
    Scenario,
    run_seed,
    run_seeds,
)

__all__ = [
    "DEFAULT_STEPS",
    "PROFILE_NAMES",
    "Checker",
    "NetConfig",
    "Outcome",
    "Scenario",
    "Sim",
    "SimNode",
    "Violation",
    "Write",
    "run_seed",
    "run_seeds",
]
