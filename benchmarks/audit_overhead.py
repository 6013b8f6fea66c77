"""Audit overhead: ingest throughput with the audit recorder on vs. short-circuited.

Method (ONE run): two watchkeep servers with identical settings (fsync on), one as shipped and
one whose recorder skips the durable append (``benchmarks/no_audit_app.py``), each with its own
data directory. The same client processes as ``benchmarks.ingest`` POST NDJSON to each in turn,
alternating ``--rounds`` times (on, off, on, off, ...) so that drift in machine load hits both
sides alike. Two workloads: batches of 1,000 events (what agents send) and batches of 10
events (a hundred times more requests per event: the worst case for a per-request cost).
``overhead`` = 1 - on/off; the budget (issue 3) is at most 10 % of ingest throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.ingest import free_port, run_load, start, stop

SMALL = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=6.0, help="load time per round")
    parser.add_argument("--rounds", type=int, default=2, help="on/off alternations")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    from iam import format_key_pair, generate_key_pair, generate_master_key

    key = format_key_pair(*generate_key_pair())
    auth = {"Authorization": f"Bearer {key}"}
    tmp = Path(tempfile.mkdtemp(prefix="watchkeep-audit-bench-"))
    base_env = dict(os.environ, WATCHKEEP_ADMIN_KEY=key)
    base_env["WATCHKEEP_MASTER_KEY"] = generate_master_key().decode()
    pool = get_context("spawn").Pool(args.clients, signal.signal, (signal.SIGINT, signal.SIG_IGN))
    procs: list[subprocess.Popen[bytes]] = []
    py = sys.executable
    try:
        urls = {}
        for name, target in (
            ("on", "server.app:create_app"),
            ("off", "benchmarks.no_audit_app:app"),
        ):
            port = free_port()
            env = dict(base_env, WATCHKEEP_DATA_DIR=str(tmp / name))
            argv = [py, "-m", "uvicorn", "--factory", target, "--port", str(port)]
            argv += ["--log-level", "warning", "--timeout-graceful-shutdown", "10"]
            procs.append(start(argv, env, f"http://127.0.0.1:{port}/healthz", tmp / f"{name}.log"))
            urls[name] = f"http://127.0.0.1:{port}/api/v1/logs/events?group=bench&stream=s"
        n = args.clients
        figures: dict[str, Any] = {"clients": n, "seconds": args.seconds, "rounds": args.rounds}
        for workload, batch in (("batch_1000", 1000), (f"batch_{SMALL}", SMALL)):
            rates: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(args.rounds):
                for side in ("on", "off"):
                    load_urls = [f"{urls[side]}{i}" for i in range(n)]
                    result = run_load(pool, load_urls, auth, args.seconds, batch=batch)
                    rates[side].append(result["events_per_s"])
            on, off = sum(rates["on"]) / args.rounds, sum(rates["off"]) / args.rounds
            figures[workload] = {
                "on_events_per_s": on,
                "off_events_per_s": off,
                "ratio_on_to_off": on / off,
                "overhead": 1 - on / off,
                "rounds": rates,
            }
        print_table(figures)
        if args.json:
            print(json.dumps(figures, indent=2))
        return 0
    finally:
        pool.terminate()
        for proc in procs:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def print_table(figures: dict[str, Any]) -> None:
    print(
        f"audit overhead: {figures['clients']} client processes, {figures['rounds']} x "
        f"{figures['seconds']:g} s per side and workload (fsync on both sides)"
    )
    header = ("workload", "audit on ev/s", "recorder off ev/s", "on/off", "overhead")
    print(f"{header[0]:<12} {header[1]:>14} {header[2]:>18} {header[3]:>7} {header[4]:>9}")
    for workload in ("batch_1000", f"batch_{SMALL}"):
        f = figures[workload]
        print(
            f"{workload:<12} {f['on_events_per_s']:>14,.0f} {f['off_events_per_s']:>18,.0f} "
            f"{f['ratio_on_to_off']:>6.2f}x {f['overhead']:>8.1%}"
        )


if __name__ == "__main__":
    sys.exit(main())
