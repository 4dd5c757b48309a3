"""Command line: run seeded simulations of the Raft core.

    python -m tests.sim --seeds N --start S [--nodes 3|5|7] [--steps K]
                        [--profile NAME] [--mutation NAME] [--verbose]

Prints ``N seeds passed``, or the first failing seed with the violated
property and the trace of its last events.  Re-running that seed alone
(``--seeds 1 --start SEED``) replays it exactly; add ``--verbose`` to print
every event.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from tests.sim.mutations import MUTATIONS, mutated
from tests.sim.scenario import DEFAULT_STEPS, PROFILE_NAMES, run_seed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    ap.add_argument("--start", type=int, default=0, help="the first seed")
    ap.add_argument("--nodes", type=int, choices=(3, 5, 7), help="cluster size (default: by seed)")
    ap.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help="simulator steps in the fault phase"
    )
    ap.add_argument("--profile", choices=PROFILE_NAMES, help="fault profile (default: by seed)")
    ap.add_argument("--mutation", choices=sorted(MUTATIONS), help="run against a broken core")
    ap.add_argument("--trace", type=int, default=80, help="events shown for a failure")
    ap.add_argument("--verbose", action="store_true", help="print every event as it happens")
    args = ap.parse_args(argv)

    ctx = mutated(args.mutation) if args.mutation else contextlib.nullcontext()
    t0 = time.process_time()
    passed = 0
    with ctx:
        if args.mutation:
            print(f"mutation {args.mutation}: {MUTATIONS[args.mutation].description}")
        for seed in range(args.start, args.start + args.seeds):
            out = run_seed(
                seed,
                args.nodes,
                args.steps,
                profile=args.profile,
                verbose=args.verbose,
                trace_lines=args.trace,
            )
            if not out.ok:
                print(out.report())
                print(
                    f"{passed} seeds passed before seed {seed} failed; replay it with: "
                    f"python -m tests.sim --seeds 1 --start {seed}"
                    + (f" --nodes {args.nodes}" if args.nodes else "")
                    + (f" --steps {args.steps}" if args.steps != DEFAULT_STEPS else "")
                    + (f" --profile {args.profile}" if args.profile else "")
                    + (f" --mutation {args.mutation}" if args.mutation else "")
                )
                return 1
            passed += 1
            if args.verbose:
                print(out.report())
    cpu = time.process_time() - t0
    print(f"{passed} seeds passed ({cpu:.1f} s CPU)", file=sys.stderr)
    print(f"{passed} seeds passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
