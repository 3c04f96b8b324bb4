"""``python -m chaos [scenario ...]`` (``make chaos``): real Kafka, PostgreSQL, services and
gateway as processes; each scenario injects its fault under a write stream and the auditor
checks nothing was lost or done twice. Exits 1 when any scenario fails."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

import httpx

from chaos.harness import System
from chaos.load import Outcome
from chaos.scenarios import SCENARIOS, Ctx, Result
from deploy.local._util import REPO_ROOT

HEADER = ("scenario", "requests", "2xx", "retried", "duplicates", "lost", "5xx", "convergence")


def table(results: list[Result]) -> str:
    rows = [HEADER]
    for r in results:
        conv = f"{r.convergence_s:.1f} s" if r.convergence_s is not None else "NO"
        rows.append(
            (
                r.name,
                str(r.requests),
                str(r.ok2xx),
                str(r.retried),
                str(r.audit.duplicates),
                str(r.audit.lost),
                str(r.five_xx),
                conv,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _status_summary(outcomes: list[Outcome]) -> str:
    seen: dict[str, int] = {}
    for o in outcomes:
        for s in o.statuses:
            seen[str(s)] = seen.get(str(s), 0) + 1
    return ", ".join(f"{k}×{v}" for k, v in sorted(seen.items()))


async def ensure_up(system: System) -> None:
    """Every process alive and ready before the next scenario (a failed restart would
    otherwise fail every later scenario too)."""
    procs = [*system.services.values(), *system.extra.values()]
    if system.gateway is not None:
        procs.append(system.gateway)
    for p in procs:
        p.start()
    await asyncio.gather(*(p.wait_ready() for p in procs))


async def run(names: list[str], run_dir: Path) -> list[Result]:
    print(f"chaos: run directory {run_dir}", flush=True)
    started = time.monotonic()
    system = await System.start(run_dir)
    print(f"chaos: system up in {time.monotonic() - started:.0f} s", flush=True)
    results: list[Result] = []
    try:
        assert system.gateway is not None
        async with httpx.AsyncClient(base_url=system.gateway.url, timeout=10.0) as client:
            ctx = Ctx(system=system, client=client)
            for name in names:
                t0 = time.monotonic()
                print(f"chaos: {name} ...", flush=True)
                await ensure_up(system)
                try:
                    result = await SCENARIOS[name](ctx)
                except Exception as exc:
                    traceback.print_exc()
                    from chaos.auditor import Audit

                    result = Result(name, [], Audit(problems=[f"crashed: {exc!r}"]), None)
                results.append(result)
                verdict = "ok" if result.passed else "FAIL"
                print(
                    f"chaos: {name} {verdict} in {time.monotonic() - t0:.0f} s; "
                    f"attempts {_status_summary(result.outcomes)}",
                    flush=True,
                )
                for note in result.notes:
                    print(f"    {note}", flush=True)
                for problem in result.audit.problems:
                    print(f"    problem: {problem}", flush=True)
    finally:
        system.stop()
    if not all(r.passed for r in results):
        print("logs:", *(f"  {p}" for p in system.logs()), sep="\n")
    return results


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through run(): processes stopped


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _interrupt)  # `timeout` in make chaos
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="scenario", help=", ".join(SCENARIOS))
    parser.add_argument("--run-dir", type=Path, default=None, help="default var/chaos/<time>")
    parser.add_argument("--keep", action="store_true", help="keep the run directory on success")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    run_dir = args.run_dir or REPO_ROOT / "var" / "chaos" / datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(run(names, run_dir))
    print()
    print(table(results))
    passed = len(results) == len(names) and all(r.passed for r in results)
    if passed and not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    print("chaos: " + ("all scenarios passed" if passed else "FAILED (see problems above)"))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
