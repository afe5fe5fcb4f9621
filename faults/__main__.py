"""`python -m faults` (`make faults`): run every fault scenario, print the table, write JSON."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from faults import automation, kills
from faults.report import Row, commit, table, write_json
from faults.stack import Source, export_tree

Scenario = Callable[[Path], list[Row]]


def scenarios() -> dict[str, Scenario]:
    """Every scenario by name, in the order they run."""
    from faults import data, inputs  # noqa: PLC0415  (the API and bench imports are heavy)

    return {
        "data": data.data_path,
        "data-short": data.data_path_short,
        "two-faults": data.two_faults,
        "teleinfo": kills.teleinfo_killed,
        "shedding": kills.shedding_killed,
        "relays": kills.relays_killed,
        "automation": automation.automation_faults,
        "hostile": inputs.hostile_input,
        "api": inputs.api_chunked_body,
        "latency": inputs.shed_latency,
    }


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; exit 1 when any reading was lost or doubled, any load left
    on, or any figure out of its limit."""
    known = scenarios()
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    default = [n for n in known if n != "data-short"]
    parser.add_argument("--only", default=",".join(default),
                        help=f"comma-separated scenarios (default: {','.join(default)}; "
                        "data-short is the data path in under 4 minutes, for make test)")
    parser.add_argument("--work", type=Path, default=Path("run/faults"),
                        help="processes' configs and logs (default run/faults)")
    parser.add_argument("--json", type=Path, default=Path("run/faults.json"))
    parser.add_argument("--source", default="checkout", metavar="checkout|REV",
                        help="run the services from the checkout as it is (default), or from "
                        "a clean export of a commit, e.g. HEAD (uncommitted edits left out)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in known]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    # SIGTERM unwinds like Ctrl-C, so every scenario's finally stops what it started.
    signal.signal(signal.SIGTERM, _terminate)
    start = time.monotonic()
    rows: list[Row] = []
    version = commit(dirty=True)
    if args.source != "checkout":
        Source.use(export_tree(args.source, args.work / "src"))
        version = commit(args.source, dirty=False)
    print(f"enerbox fault run on {version}: {', '.join(chosen)}", flush=True)
    for name in chosen:
        t = time.monotonic()
        try:
            got = known[name](args.work)
        except Exception as exc:  # one broken scenario must not hide the others
            traceback.print_exc()
            got = [Row(f"{name}: scenario failed", [], None, "", None,
                       note=f"{type(exc).__name__}: {exc}"[:200])]
        rows += got
        print(f"  {name}: {time.monotonic() - t:.0f} s", flush=True)
        for row in got:
            print(f"    {row.fault}: {row.shown()} (within: {row.within}) {row.note}", flush=True)
    elapsed = time.monotonic() - start
    print()
    print(table(rows))
    write_json(rows, args.json, elapsed, version)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{len(rows)} figures in {elapsed:.0f} s (load average {load} on {os.cpu_count()} "
          f"CPUs); written to {args.json}")
    failed = [r.fault for r in rows if r.failed]
    if failed:
        print(f"FAILED: {'; '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
