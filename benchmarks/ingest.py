"""Ingest benchmark: durable NDJSON ingest over HTTP, as a ratio to a parse-only endpoint.

Method (everything in ONE run, so machine noise hits both sides alike):

1. Start the real server (``python -m server.cli serve``, fsync on, default settings) and a
   baseline (``benchmarks/baseline_app.py``: FastAPI + ``orjson.loads`` per line, nothing
   stored), each in its own uvicorn process with one worker, and wait for ``/healthz``.
2. Each of ``--clients`` client *processes* (so client CPU does not share a server's GIL)
   pre-builds batches of 1,000 NDJSON events (about 10 fields, some nested, stable types), then
   POSTs them in a loop with httpx for ``--seconds``. Only events acknowledged with a 2xx
   status count; the rate is acknowledged events / wall time from start to the last answer.
3. A short extra run sends batches whose types change (``req.status`` is a string in every 5th
   batch) to a second group and checks that every acknowledged event can be read back.
4. The server is stopped with SIGTERM (which flushes the memtable to Parquet); then bytes on
   disk per event and the server's peak RSS (``VmHWM``, read just before stopping) are reported.

``ratio`` = watchkeep events/s / baseline events/s. The baseline does strictly less work than
the server (no auth, no WAL, no fsync, no Arrow, no Parquet), so a ratio >= 1 means durable
ingest costs no more than merely parsing the JSON per line in Python (DESIGN.md budget).
The same baseline process also serves the *floor*, ``POST /parse-columns``: Arrow's JSON reader
turns the body into columns, which are discarded. Durable ingest does that and more, so
``floor / baseline`` bounds the ratio any server built on that reader can reach here.
If ``moto`` and ``boto3`` are importable, moto's PutLogEvents rate is measured too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any

import httpx
import orjson

BATCH = 1000
ROOT = Path(__file__).resolve().parent.parent
TARGETS = [("baseline (parse only)", "baseline"), ("floor (Arrow columns)", "floor"),
           ("watchkeep (fsync)", "watchkeep"),
           ("watchkeep (mixed types)", "mixed_types"), ("moto PutLogEvents", "moto")]  # fmt: skip
COUNTS = ("acked", "warmup", "requests", "non_2xx", "errors")
MOTO_CLIENT = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


@dataclass(frozen=True)
class Job:
    url: str
    headers: dict[str, str]
    mixed: bool
    seed: int
    start_at: float
    end_at: float
    batch: int = BATCH  # events per request; smaller batches are cut from the 1,000-event ones


@dataclass
class Tally:
    acked: int = 0
    warmup: int = 0
    requests: int = 0
    non_2xx: int = 0
    errors: int = 0
    last_done: float = 0.0


def make_batch(rng: random.Random, string_status: bool = False) -> bytes:
    now = int(time.time() * 1000)
    lines = []
    for i in range(BATCH):
        status = rng.choice((200, 200, 200, 201, 304, 404, 500))
        event = {
            "timestamp": now - (BATCH - i),
            "level": rng.choice(("info", "info", "warn", "error", "debug")),
            "service": rng.choice(("api", "auth", "billing")),
            "host": f"web-{rng.randrange(8)}",
            "req": {
                "method": rng.choice(("GET", "POST", "PUT")),
                "path": f"/x/{rng.randrange(10_000)}",
                "status": str(status) if string_status else status,
                "ms": round(rng.uniform(0.5, 900.0), 1),
            },
            "user": {"id": rng.randrange(100_000), "tenant": f"t{rng.randrange(50)}"},
            "bytes": rng.randrange(100, 100_000),
            "trace_id": f"{rng.getrandbits(64):016x}",
            "region": rng.choice(("eu-west-1", "us-east-1")),
            "msg": f"handled request {rng.randrange(1_000_000)} in {rng.randrange(900)} ms",
        }
        lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n"


def client_worker(job: Job) -> Tally:
    """One client process: build batches, wait for the common start, POST until the end."""
    rng = random.Random(job.seed)
    batches = [make_batch(rng, string_status=job.mixed and i % 5 == 4) for i in range(10)]
    if job.batch < BATCH:
        lines = [line for b in batches for line in b.splitlines(keepends=True)]
        batches = [b"".join(lines[i : i + job.batch]) for i in range(0, len(lines), job.batch)]
    tally = Tally()
    headers = {**job.headers, "Content-Type": "application/x-ndjson"}
    with httpx.Client(headers=headers, timeout=60.0) as client:
        sent = 0
        while sent == 0 or time.time() < job.start_at:  # warm up until the common start
            response = client.post(job.url, content=batches[sent % len(batches)])
            tally.warmup += int(response.json().get("accepted", 0)) if response.is_success else 0
            sent += 1
        while time.time() < job.end_at:
            body = batches[tally.requests % len(batches)]
            tally.requests += 1
            try:
                response = client.post(job.url, content=body)
            except httpx.HTTPError:
                tally.errors += 1
                continue
            if response.is_success:
                tally.acked += int(response.json().get("accepted", 0))
            else:
                tally.non_2xx += 1
            tally.last_done = time.time()
    return tally


def run_load(
    pool: Pool,
    urls: list[str],
    headers: dict[str, str],
    seconds: float,
    *,
    mixed: bool = False,
    worker: Callable[[Job], Tally] = client_worker,
    batch: int = BATCH,
) -> dict[str, Any]:
    start = time.time() + 3.0  # time for the workers to start, build batches and warm up
    jobs = [
        Job(url, headers, mixed, n, start, start + seconds, batch) for n, url in enumerate(urls)
    ]
    tallies = list(pool.map(worker, jobs))
    elapsed = max([t.last_done for t in tallies] + [start + seconds]) - start
    totals = {k: sum(getattr(t, k) for t in tallies) for k in COUNTS}
    return {"events_per_s": totals["acked"] / elapsed, **totals}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(argv: list[str], env: dict[str, str], health: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # own session: Ctrl-C reaches us, and we stop the servers
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[2]} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(health, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{argv[2]} did not become healthy in 60 s:\n{log.read_text()}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_1000(pid: int, load: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run ``load`` and add the server's CPU milliseconds per 1,000 acknowledged events (the
    warm-up included), a figure that moves less than events/s when the machine is shared."""
    before = cpu_seconds(pid)
    result = load()
    events = result["acked"] + result["warmup"]
    result["cpu_ms_per_1000"] = (cpu_seconds(pid) - before) * 1e6 / max(events, 1)
    return result


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def count_stored(base: str, headers: dict[str, str], group: str) -> int:
    params: dict[str, Any] = {"group": group, "limit": 10_000}
    total = 0
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        while True:
            response = client.get("/api/v1/logs/events", params=params)
            response.raise_for_status()
            body = response.json()
            total += len(body["events"])
            if not body.get("next_token"):
                return total
            params["next_token"] = body["next_token"]


def moto_worker(job: Job) -> Tally:
    """One client process sending the same events to moto with boto3 PutLogEvents."""
    import boto3

    logs = boto3.client("logs", endpoint_url=job.url, **MOTO_CLIENT)
    stream = f"s{job.seed}"
    logs.create_log_stream(logGroupName="bench", logStreamName=stream)
    lines = make_batch(random.Random(job.seed)).decode().splitlines()
    tally = Tally()
    time.sleep(max(0.0, job.start_at - time.time()))
    while time.time() < job.end_at:
        now = int(time.time() * 1000)
        events = [{"timestamp": now, "message": m} for m in lines]
        tally.requests += 1
        try:
            logs.put_log_events(logGroupName="bench", logStreamName=stream, logEvents=events)
            tally.acked += len(events)
        except Exception:
            tally.errors += 1
        tally.last_done = time.time()
    return tally


def measure_moto(
    pool: Pool, n: int, seconds: float, env: dict[str, str], log: Path
) -> dict[str, Any] | None:
    """moto's PutLogEvents rate (its own server process), or None if moto/boto3 are missing."""
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError:
        return None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = start(argv, env, f"{url}/moto-api/", log)
    try:
        logs = boto3.client("logs", endpoint_url=url, **MOTO_CLIENT)
        logs.create_log_group(logGroupName="bench")
        return run_load(pool, [url] * n, {}, seconds, worker=moto_worker)
    finally:
        stop(proc)


def disk_usage(data_dir: Path) -> tuple[int, int, int]:
    """(log segment bytes, log segment rows, all bytes) under the data directory; the audit
    trail's and metric store's Parquet files are not log events."""
    import pyarrow.parquet as pq

    from store.layout import LOGS_TABLE_DIR

    files = list((data_dir / LOGS_TABLE_DIR).rglob("*.parquet"))
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    total = sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())
    return sum(f.stat().st_size for f in files), rows, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=10.0, help="load time per target")
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)

    from iam import format_key_pair, generate_key_pair, generate_master_key

    key = format_key_pair(*generate_key_pair())
    auth = {"Authorization": f"Bearer {key}"}
    tmp = Path(tempfile.mkdtemp(prefix="watchkeep-bench-"))
    data_dir = tmp / "data"
    env = dict(os.environ, WATCHKEEP_ADMIN_KEY=key)
    env["WATCHKEEP_MASTER_KEY"] = generate_master_key().decode()
    procs: list[subprocess.Popen[bytes]] = []
    # Workers ignore SIGINT: on Ctrl-C only this process stops, and terminates them below.
    pool = get_context("spawn").Pool(args.clients, signal.signal, (signal.SIGINT, signal.SIG_IGN))
    py = sys.executable
    try:
        b_port, w_port = free_port(), free_port()
        b_base, w_base = f"http://127.0.0.1:{b_port}", f"http://127.0.0.1:{w_port}"
        uvicorn = f"-m uvicorn benchmarks.baseline_app:app --port {b_port} --log-level warning"
        argv = [py, *uvicorn.split(), "--timeout-graceful-shutdown", "10"]
        procs.append(start(argv, env, f"{b_base}/healthz", tmp / "baseline.log"))
        argv = [py, *f"-m server.cli serve --port {w_port} --log-level warning".split()]
        argv += ["--data-dir", str(data_dir)]
        procs.append(start(argv, env, f"{w_base}/healthz", tmp / "server.log"))
        baseline_proc, server = procs
        n = args.clients
        ingest = f"{w_base}/api/v1/logs/events?group=bench&stream=s"
        mixed_url = f"{w_base}/api/v1/logs/events?group=bench2&stream=s"
        base = cpu_per_1000(
            baseline_proc.pid, lambda: run_load(pool, [f"{b_base}/parse"] * n, {}, args.seconds)
        )
        floor = cpu_per_1000(
            baseline_proc.pid,
            lambda: run_load(pool, [f"{b_base}/parse-columns"] * n, {}, args.seconds),
        )
        urls = [f"{ingest}{i}" for i in range(n)]
        wk = cpu_per_1000(server.pid, lambda: run_load(pool, urls, auth, args.seconds))
        urls = [f"{mixed_url}{i}" for i in range(n)]
        mixed = run_load(pool, urls, auth, max(2.0, args.seconds / 3), mixed=True)
        moto = measure_moto(pool, n, args.seconds, env, tmp / "moto.log")
        mixed["stored"] = count_stored(w_base, auth, "bench2")
        rss, base_rss = peak_rss_mib(server.pid), peak_rss_mib(baseline_proc.pid)
        for proc in procs:
            stop(proc)
        pq_bytes, pq_rows, all_bytes = disk_usage(data_dir)
        acked = sum(r["acked"] + r["warmup"] for r in (wk, mixed))
        wk_rate = wk["events_per_s"]
        # fmt: off
        figures: dict[str, Any] = {
            "clients": n, "seconds": args.seconds, "batch": BATCH,
            "baseline": base, "floor": floor, "watchkeep": wk, "mixed_types": mixed, "moto": moto,
            "ratio_to_baseline": wk_rate / base["events_per_s"],
            "floor_to_baseline": floor["events_per_s"] / base["events_per_s"],
            "ratio_to_moto": wk_rate / moto["events_per_s"] if moto else None,
            "cpu_ratio": wk["cpu_ms_per_1000"] / base["cpu_ms_per_1000"],
            "parquet_bytes_per_event": pq_bytes / max(acked, 1),
            "data_dir_bytes_per_event": all_bytes / max(acked, 1),
            "parquet_rows": pq_rows, "acked_total": acked,
            "server_peak_rss_mib": rss, "baseline_peak_rss_mib": base_rss,
        }
        # fmt: on
        print_table(figures)
        if args.json:
            print(json.dumps(figures, indent=2))
        ok = mixed["stored"] == mixed["acked"] + mixed["warmup"] and pq_rows == acked
        return 0 if ok else 1
    finally:
        pool.terminate()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def print_table(f: dict[str, Any]) -> None:
    m = f["mixed_types"]
    m_acked = m["acked"] + m["warmup"]
    moto = f"{f['ratio_to_moto']:.1f}x" if f["moto"] else "skipped (moto/boto3 not importable)"
    lines = [
        f"ingest benchmark: {f['clients']} client processes, {f['seconds']:g} s per target, "
        f"batches of {f['batch']:,} NDJSON events",
        f"  {'target':<24}{'events/s':>10}{'acked':>12}{'non-2xx':>9}{'errors':>8}",
    ]
    for name, key in TARGETS:
        if r := f[key]:
            lines.append(f"  {name:<24}{r['events_per_s']:>10,.0f}{r['acked']:>12,}"
                         f"{r['non_2xx']:>9}{r['errors']:>8}")  # fmt: skip
    lines += [
        f"  ratio watchkeep/baseline  {f['ratio_to_baseline']:.2f}x "
        f"(the floor, Arrow columns and nothing else: {f['floor_to_baseline']:.2f}x)",
        f"  ratio watchkeep/moto      {moto}",
        f"  server CPU per 1,000      {f['baseline']['cpu_ms_per_1000']:.1f} ms baseline, "
        f"{f['floor']['cpu_ms_per_1000']:.1f} ms floor, "
        f"{f['watchkeep']['cpu_ms_per_1000']:.1f} ms watchkeep ({f['cpu_ratio']:.1f}x the work)",
        f"  mixed types: stored {m['stored']:,} of {m_acked:,} acknowledged (incl. warm-up): "
        + ("OK" if m["stored"] == m_acked else "MISMATCH"),
        f"  bytes/event on disk       {f['parquet_bytes_per_event']:.1f} Parquet, "
        f"{f['data_dir_bytes_per_event']:.1f} whole data dir; "
        f"{f['parquet_rows']:,} Parquet rows for {f['acked_total']:,} acked",
        f"  peak RSS (VmHWM)          {f['server_peak_rss_mib']:.0f} MiB server, "
        f"{f['baseline_peak_rss_mib']:.0f} MiB baseline",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
