"""`python -m tests.explore`: the full single-fault enumeration (or `--sample N --seed S`, or `--schedule ID`).

Exits 1 if any invariant was violated; each violation names its schedule, which `--schedule` replays alone.
"""

from __future__ import annotations

import argparse
import sys

from .explorer import SCENARIOS, Explorer
from .world import World


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.explore", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: every scenario")
    parser.add_argument("--sample", type=int, help="faulted schedules per scenario, drawn at random (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", help="replay one schedule by its id, e.g. 'studio-queue/transient@...'")
    args = parser.parse_args(argv)
    world = World().start()
    try:
        explorer = Explorer(world, log=lambda line: print(line, flush=True))
        if args.schedule:
            report = explorer.replay(args.schedule)
        else:
            chosen = [SCENARIOS[name] for name in (args.scenario or sorted(SCENARIOS))]
            report = explorer.explore(chosen, sample=args.sample, seed=args.seed)
    finally:
        world.stop()
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
