"""Benchmark: the daily segmentation (the segment-customers flow's work) at 1M invoices.

    .venv/bin/python -m bench.bench_segments                       # both backends
    .venv/bin/python -m bench.bench_segments --backends sqlite --out bench/results/x.json

Per backend, on a private copy of the shared seeded database (SQLite: a copy of
/work/benchdata/1m.sqlite; PostgreSQL: ``createdb -T bench_1m``, dropped afterwards), migrated
to head: a child process does what the flow does without Prefect's own start: load the
portfolio, segment every customer (``segment_frame``), write the snapshot
(``write_snapshot``, replacing the previous one) and build the artifact (``segment_summary``
and its markdown). It runs twice: ``first`` into an empty snapshot, then ``daily`` over the
snapshot the first wrote (the daily case: movement computed against it).

Keys per backend: ``segment_snapshot_s_1m`` (wall seconds of the daily run, Python start and
imports included), ``segment_snapshot_cpu_s_1m``, ``segment_snapshot_peak_rss_mb`` (the
child's maximum resident set), the phases (load, segment, write, artifact) and the first run's
figures. Figures on a busy machine are inflated; ratios are taken in one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SQLITE_1M = Path("/work/benchdata/1m.sqlite")
PG_1M = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_1m"
AS_OF = "2026-11-24T15:00:00Z"
TARGET_S, TARGET_MB = 30.0, 2048.0


def _child(url: str, as_of: str) -> dict[str, Any]:
    """The measured work in this (child) process: the phases' wall seconds and counts."""
    import datetime as dt

    started = time.perf_counter()
    from dunning.db import check_ready, get_engine
    from dunning.policy import load_policy, segment_frame
    from dunning.portfolio import load_portfolio
    from dunning.segment_snapshot import snapshot_markdown, write_snapshot
    from dunning.segments.rules import segment_summary

    at = dt.datetime.fromisoformat(as_of.replace("Z", "+00:00"))
    marks = {"imports": time.perf_counter() - started}
    cpu = {"imports": time.process_time()}

    @contextlib.contextmanager
    def phase(name: str) -> Iterator[None]:
        t, c = time.perf_counter(), time.process_time()
        yield
        marks[name], cpu[name] = time.perf_counter() - t, time.process_time() - c

    engine = get_engine(url)
    check_ready(engine)
    policy = load_policy()
    with phase("load"):
        portfolio = load_portfolio(engine)
    with phase("segment"):
        frame = segment_frame(portfolio, at, policy)
    with phase("write"):
        written = write_snapshot(engine, frame, at, policy)
    with phase("artifact"):
        markdown = snapshot_markdown(segment_summary(portfolio, frame, at), written)
    return {
        "phases_s": {k: round(v, 3) for k, v in marks.items()},
        "phases_cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "customers": written.customers,
        "invoices": len(portfolio.invoices),
        "moved": written.moved,
        "segments": {str(k): int(v) for k, v in frame["segment"].value_counts().items()},
        "markdown_chars": len(markdown),
    }


def _measure(url: str, as_of: str) -> dict[str, Any]:
    """One child run: its figures plus wall s, CPU s (user + system) and peak RSS (MiB), the
    last two from wait4 (this child's own, not the maximum over all children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_segments", "--child", url, "--as-of", as_of],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"segmentation child failed ({proc.returncode}): {err[-2000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    figures["wall_s"] = round(wall, 2)
    figures["cpu_s"] = round(usage.ru_utime + usage.ru_stime, 2)
    figures["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)
    return figures


@contextlib.contextmanager
def _sqlite_copy(source: Path, workdir: Path) -> Iterator[str]:
    path = workdir / "segments_1m.sqlite"
    shutil.copy(source, path)
    yield f"sqlite:///{path}"
    path.unlink(missing_ok=True)


@contextlib.contextmanager
def _pg_copy(source_url: str) -> Iterator[str]:
    from sqlalchemy.engine import make_url

    src = make_url(source_url)
    name = f"snapshot_bench_{uuid.uuid4().hex[:8]}"
    base = ["-h", src.host or "127.0.0.1", "-U", src.username or "postgres"]
    if src.port:
        base += ["-p", str(src.port)]
    # The template may not have other sessions: retry while other benchmarks read it.
    for attempt in range(30):
        done = subprocess.run(
            ["createdb", *base, "-T", str(src.database), name], capture_output=True, text=True
        )
        if done.returncode == 0:
            break
        if "being accessed by other users" not in done.stderr or attempt == 29:
            raise RuntimeError(f"createdb -T {src.database} failed: {done.stderr.strip()}")
        time.sleep(10)
    try:
        yield src.set(database=name).render_as_string(hide_password=False)
    finally:
        subprocess.run(["dropdb", *base, "--if-exists", name], capture_output=True, check=False)


def _backend(backend: str, sqlite: Path, pg_url: str, as_of: str, workdir: Path) -> dict[str, Any]:
    from dunning.db import get_engine, upgrade

    copy = _sqlite_copy(sqlite, workdir) if backend == "sqlite" else _pg_copy(pg_url)
    with copy as url:
        t = time.perf_counter()
        upgrade(url)
        get_engine(url).dispose()
        migrate_s = time.perf_counter() - t
        first = _measure(url, as_of)
        daily = _measure(url, as_of)
    return {
        "segment_snapshot_s_1m": daily["wall_s"],
        "segment_snapshot_cpu_s_1m": daily["cpu_s"],
        "segment_snapshot_peak_rss_mb": daily["peak_rss_mb"],
        "met_30s": daily["wall_s"] < TARGET_S,
        "met_2gb": daily["peak_rss_mb"] < TARGET_MB,
        "daily": daily,
        "first": first,
        "migrate_copy_s": round(migrate_s, 2),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the benchmark; returns (and prints as JSON) {backend: figures} plus ``as_of``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--sqlite", type=Path, default=SQLITE_1M, help="the seeded SQLite file")
    parser.add_argument("--pg-url", default=PG_1M, help="the seeded PostgreSQL database")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = _child(args.child, args.as_of)
        print(json.dumps(result))
        return result
    results: dict[str, Any] = {"as_of": args.as_of}
    with tempfile.TemporaryDirectory(prefix="bench-segments-") as tmp:
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            if backend not in ("sqlite", "postgresql"):
                raise SystemExit(f"--backends: unknown backend {backend!r}")
            results[backend] = _backend(backend, args.sqlite, args.pg_url, args.as_of, Path(tmp))
            fig = results[backend]
            print(
                f"{backend}: daily {fig['segment_snapshot_s_1m']} s wall, "
                f"{fig['segment_snapshot_cpu_s_1m']} s CPU, "
                f"{fig['segment_snapshot_peak_rss_mb']} MB peak RSS; phases "
                f"{fig['daily']['phases_s']}",
                file=sys.stderr,
            )
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
