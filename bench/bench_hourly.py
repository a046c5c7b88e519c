"""Benchmark: an hourly reminder run with nothing due, end to end, actionable-only load vs full.

    .venv/bin/python bench/bench_hourly.py [--sqlite /work/benchdata/1m.sqlite]
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/bench_1m] [--backends sqlite,postgresql]
        [--runs dry,real] [--no-snapshot]

On a copy of the 1M-invoice benchmark database (SQLite: a file copy; PostgreSQL: ``createdb
-T``), runs the payment-reminders flow at 2026-11-29T03:00Z (a Sunday: every line is deferred
or skipped, nothing is sent), as a dry run and as a real run, from flow start to report. Each
run is its own process (so peak RSS is that run's), with Prefect's own start done before the
clock starts (a trivial flow first). The baseline is the same flow with the old fetch (the
full portfolio: every invoice planned), measured in the same invocation; the ratio is
baseline / ours. Unless --no-snapshot, the segmentation snapshot is written at the as-of first
(not timed), as the daily segment-customers flow leaves it, and ``history`` (ours, but every
planned customer loaded with its full history, as before the snapshot reduced the load) is
measured too (``history_over_ours_cpu``). Figures on a busy 2-core machine are inflated;
compare the ratios.

``main(argv) -> dict`` returns, per backend, ``noop_hourly_run_s_1m``,
``noop_hourly_run_peak_rss_mb``, ``noop_hourly_run_cpu_s_1m`` and the baseline's figures
(``baseline_...``), and ``noop_hourly_speedup`` (baseline wall / ours).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-29T03:00:00+00:00"
SQLITE_SOURCE = Path("/work/benchdata/1m.sqlite")
PG_SOURCE = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_1m"
#: The prefix of a child's result line (the run's own output may print JSON-like lines too).
_MARK = "bench_hourly result: "


def _child(url: str, path: str, dry_run: bool) -> dict[str, Any]:
    """In a fresh process: one payment-reminders run against ``url``; ``path`` "ours" or
    "full" (the old fetch: the whole portfolio in scope)."""
    import resource

    os.environ["DUNNING_DATABASE_URL"] = url
    # A busy machine: Prefect's temporary server gets as long as the CLI gives it.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    from prefect import flow

    from dunning.config import reload_settings

    reload_settings()
    import dunning.flows.payment_reminders as module
    from dunning.flows.payment_reminders import payment_reminders

    if path == "history":
        import dunning.tasks.fetch as fetch_module

        load = fetch_module.load_portfolio

        def full_history(*args: Any, **kwargs: Any) -> Any:
            kwargs.pop("snapshot_max_age", None)
            return load(*args, **kwargs)

        fetch_module.load_portfolio = full_history  # type: ignore[assignment]
    if path == "full":
        fetch = module.fetch_portfolio

        def full_fetch(numbers: Any, shard: Any, **_: Any) -> Any:
            return fetch(numbers, shard)

        module.fetch_portfolio = full_fetch  # type: ignore[assignment]

    @flow(name="bench-warmup")
    def warmup() -> int:
        return 1

    warmup()  # Prefect's own start (server, client) is not the run's cost
    # "Flow start to report": when the run's publish-report task returned. The rest of the
    # wall is the flow's teardown, mostly Prefect joining its heartbeat thread, which sleeps
    # in 1 s steps (prefect.flow_engine._send_heartbeats): 0 to 1 s after every run.
    reported: list[float] = []
    publish = module.publish_report

    def timed_publish(*args: Any, **kwargs: Any) -> Any:
        out = publish(*args, **kwargs)
        reported.append(time.perf_counter())
        return out

    module.publish_report = timed_publish  # type: ignore[assignment]
    t0, c0 = time.perf_counter(), time.process_time()
    report = payment_reminders(as_of=dt.datetime.fromisoformat(AS_OF), dry_run=dry_run)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    counts = report.counts() if hasattr(report, "counts") else {}
    return {
        "wall_s": round(wall, 2),
        "to_report_s": round(reported[-1] - t0, 2) if reported else None,
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "counts": {str(k): int(v) for k, v in counts.items()},
    }


def _run_child(url: str, path: str, dry_run: bool) -> dict[str, Any]:
    """``_child`` in a subprocess; its JSON result, or the error it printed (``path``: ours,
    history or full)."""
    cmd = [sys.executable, __file__, "--child", path, "--url", url]
    if dry_run:
        cmd.append("--dry-run")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
    if proc.returncode or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return dict(json.loads(lines[-1].removeprefix(_MARK)))


def _sqlite_copy(source: Path, workdir: Path) -> str:
    target = workdir / "hourly_1m.sqlite"
    shutil.copy(source, target)
    return f"sqlite:///{target}"


def _pg_copy(source: str) -> tuple[str, str]:
    """(url of a copy of ``source`` made with createdb -T, its name)."""
    from sqlalchemy.engine import make_url

    src = make_url(source)
    name = f"hourly_bench_{uuid.uuid4().hex[:8]}"
    subprocess.run(
        [
            "createdb",
            "-h",
            src.host or "127.0.0.1",
            "-U",
            src.username or "postgres",
            "-T",
            src.database or "bench_1m",
            name,
        ],
        check=True,
    )
    return src.set(database=name).render_as_string(hide_password=False), name


def _pg_drop(source: str, name: str) -> None:
    from sqlalchemy.engine import make_url

    src = make_url(source)
    subprocess.run(
        ["dropdb", "-h", src.host or "127.0.0.1", "-U", src.username or "postgres", name],
        check=False,
    )


def _write_snapshot(url: str) -> float:
    """The segmentation snapshot at AS_OF on ``url`` (what the daily segment-customers flow
    leaves for the hourly runs), before the clock; its CPU seconds."""
    from sqlalchemy import create_engine

    from dunning.policy import load_policy, segment_frame
    from dunning.portfolio import load_portfolio
    from dunning.segment_snapshot import write_snapshot

    c0 = time.process_time()
    engine = create_engine(url)
    as_of = dt.datetime.fromisoformat(AS_OF)
    policy = load_policy(None)
    write_snapshot(engine, segment_frame(load_portfolio(engine), as_of, policy), as_of, policy)
    engine.dispose()
    return round(time.process_time() - c0, 2)


def _measure(
    url: str, kinds: tuple[bool, ...] = (True, False), snapshot: bool = True
) -> dict[str, Any]:
    """Ours and the baseline, dry run and real run (``kinds``: dry_run flags), on ``url``
    (migrated to head first: the copy may predate the newest tables). ``snapshot``: the
    segmentation snapshot is written at AS_OF first, and ``history`` (ours with every planned
    customer's full history, the load before the snapshot reduced it) is measured too."""
    from dunning.db import upgrade

    upgrade(url)
    out: dict[str, Any] = {"snapshot": snapshot}
    if snapshot:
        # In its own process: Linux keeps a process's peak RSS across fork and exec, so a
        # snapshot written here would count in every run's peak RSS below.
        cmd = [sys.executable, __file__, "--write-snapshot", "--url", url]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_MARK)]
        if proc.returncode or not lines:
            raise RuntimeError(
                f"writing the snapshot failed: {(proc.stderr or proc.stdout)[-2000:]}"
            )
        out["snapshot_write_cpu_s"] = json.loads(lines[-1].removeprefix(_MARK))
    paths = ("ours", "history", "full") if snapshot else ("ours", "full")
    for dry in kinds:
        kind = "dry_run" if dry else "real_run"
        for path in paths:
            out[f"{path}_{kind}"] = _run_child(url, path, dry)
    kind = "dry_run" if True in kinds else "real_run"
    ours, full = out[f"ours_{kind}"], out[f"full_{kind}"]
    if "wall_s" in ours:
        out["noop_hourly_run_s_1m"] = ours["wall_s"]
        out["noop_hourly_run_to_report_s_1m"] = ours.get("to_report_s")
        out["noop_hourly_run_cpu_s_1m"] = ours["cpu_s"]
        out["noop_hourly_run_peak_rss_mb"] = ours["peak_rss_mb"]
    if "wall_s" in full:
        out["baseline_noop_hourly_run_s_1m"] = full["wall_s"]
        out["baseline_noop_hourly_run_cpu_s_1m"] = full["cpu_s"]
        out["baseline_noop_hourly_run_peak_rss_mb"] = full["peak_rss_mb"]
    history = out.get(f"history_{kind}", {})
    if "cpu_s" in ours and "cpu_s" in history:
        # The full history of every planned customer (before the snapshot reduced the load)
        # over ours, in the same invocation.
        out["history_over_ours_cpu"] = round(history["cpu_s"] / max(ours["cpu_s"], 1e-9), 2)
        out["history_over_ours_wall"] = round(history["wall_s"] / max(ours["wall_s"], 1e-9), 2)
    if "wall_s" in ours and "wall_s" in full:
        out["noop_hourly_speedup"] = round(full["wall_s"] / max(ours["wall_s"], 1e-9), 2)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure the no-op hourly run per backend; the figures as a dict (see the docstring)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sqlite", type=Path, default=SQLITE_SOURCE)
    parser.add_argument("--pg", default=os.environ.get("DUNNING_BENCH_PG_1M", PG_SOURCE))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--runs", default="dry,real", help="dry, real or both (dry,real)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--no-snapshot",
        action="store_true",
        help="measure without a segmentation snapshot (every customer segmented in the run)",
    )
    parser.add_argument("--child", choices=("ours", "history", "full"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--write-snapshot", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dry-run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write_snapshot:
        print(_MARK + json.dumps(_write_snapshot(args.url)), flush=True)
        return {}
    if args.child:
        result = _child(args.url, args.child, args.dry_run)
        print(_MARK + json.dumps(result), flush=True)
        return result
    results: dict[str, Any] = {"as_of": AS_OF}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    kinds = tuple(k.strip() == "dry" for k in args.runs.split(",") if k.strip())
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix="hourly-bench-") as tmp:
            url = _sqlite_copy(args.sqlite, Path(tmp))
            results["sqlite"] = _measure(url, kinds, not args.no_snapshot)
    if "postgresql" in backends:
        url, name = _pg_copy(args.pg)
        try:
            results["postgresql"] = _measure(url, kinds, not args.no_snapshot)
        finally:
            _pg_drop(args.pg, name)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=2))
