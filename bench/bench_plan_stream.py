"""Benchmark: `dunning plan --all --json` streaming at 1M invoices, against the whole-portfolio
command it replaced, measured in the same run.

    .venv/bin/python -m bench.bench_plan_stream                      # both backends
    .venv/bin/python -m bench.bench_plan_stream --backends sqlite --out bench/results/x.json

Each contender runs as a subprocess as a user would run it (Python start and imports
included), reading the shared, seeded databases without writing to them: SQLite
/work/benchdata/1m.sqlite (opened read-only) and PostgreSQL bench_1m. Per backend:

- ``plan_first_line_s_1m``: seconds from starting the command to its first JSON line;
- ``plan_json_lines_per_s_1m``: lines written per second of the whole command (start to last
  line), and ``lines_per_s_after_first_line`` over the time after the first line;
- ``plan_stream_peak_rss_mb`` (= ``peak_rss_mb``, the child's maximum resident set),
  ``total_s``, ``lines``;
- ``baseline``: the same figures for the whole-portfolio command (load everything, plan,
  then print each line with json.dumps, as `dunning plan --json` did before streaming;
  ``_whole_plan_json`` below is that code), and the ratios baseline / streaming;
- ``same_lines``: both wrote the same lines (as parsed JSON objects; ``note`` aside, which
  the old command wrote only when some line was a call).

Figures on a busy machine are inflated; the ratios are taken in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SQLITE_1M = Path("/work/benchdata/1m.sqlite")
PG_1M = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_1m"
AS_OF = "2026-11-24T15:00:00Z"


def _whole_plan_json(as_of: str, all_lines: bool) -> None:
    """The command before streaming (dunning/cli/policy.py at 193ed4e): the whole portfolio
    loaded and planned, then one json.dumps per line."""
    from dunning.cli.app import emit_json, parse_instant
    from dunning.cli.policy import _iso, _plain
    from dunning.db import check_ready, get_engine
    from dunning.money import from_minor
    from dunning.policy import load_policy, plan
    from dunning.policy.planner import FEATURE_COLUMNS
    from dunning.portfolio import load_portfolio

    at = parse_instant(as_of)
    assert at is not None
    policy = load_policy()
    engine = get_engine()
    check_ready(engine)
    lines = plan(load_portfolio(engine), at, policy)
    if not all_lines:
        lines = lines.loc[lines["action"] == "send"]
    cols = [
        "invoice_number",
        "customer_id",
        "segment",
        "stage",
        "channel",
        "action",
        "reason",
        "not_before",
        "tone",
        "days_overdue",
    ]
    view = lines[cols].astype({c: str for c in cols if c not in ("not_before", "days_overdue")})
    view = view.assign(not_before=view["not_before"].map(_iso))
    if (lines["channel"] == "voice").any():
        from dunning.render.voice import language_notes

        view = view.assign(note=language_notes(lines["stage"], lines["channel"], lines["locale"]))
    extra = lines[["currency", "balance_minor", *FEATURE_COLUMNS]]
    for record, more in zip(view.to_dict("records"), extra.to_dict("records"), strict=True):
        balance = from_minor(int(more.pop("balance_minor")), str(more["currency"]))
        emit_json(record | {"balance": str(balance)} | _plain(more))


def _measure(cmd: list[str], url: str) -> tuple[dict[str, Any], Counter[str]]:
    """Run ``cmd`` with DUNNING_DATABASE_URL=``url``; its timings, peak RSS and its lines (as
    a multiset of canonical JSON without ``note``)."""
    env = os.environ | {"DUNNING_DATABASE_URL": url}
    lines: Counter[str] = Counter()
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, env=env, cwd=ROOT)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        first: float | None = None
        count, size, tail = 0, 0, b""
        while data := os.read(fd, 1 << 20):
            if first is None and b"\n" in data:
                first = time.perf_counter() - start
            count += data.count(b"\n")
            size += len(data)
            *whole, tail = (tail + data).split(b"\n")
            for line in whole:
                obj = json.loads(line)
                obj.pop("note", None)
                lines[json.dumps(obj, sort_keys=True)] += 1
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        total = time.perf_counter() - start
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd} failed ({proc.returncode}): {err.read().decode()[-2000:]}")
    return {
        "first_line_s": round(first, 3) if first is not None else None,
        "total_s": round(total, 3),
        "lines": count,
        "bytes": size,
        "lines_per_s": round(count / total),
        "lines_per_s_after_first_line": round(count / (total - first)) if first else None,
        "peak_rss_mb": round(usage.ru_maxrss / 1024),  # Linux: KiB
    }, lines


def _backend(url: str, as_of: str) -> dict[str, Any]:
    """Streaming and baseline on one database, with their ratios."""
    dunning = str(Path(sys.executable).with_name("dunning"))
    ours, our_lines = _measure([dunning, "plan", "--all", "--json", "--as-of", as_of], url)
    base, base_lines = _measure(
        [sys.executable, "-m", "bench.bench_plan_stream", "--whole-plan", "--as-of", as_of], url
    )
    return {
        "plan_first_line_s_1m": ours["first_line_s"],
        "plan_json_lines_per_s_1m": ours["lines_per_s"],
        "plan_stream_peak_rss_mb": ours["peak_rss_mb"],
        **ours,
        "baseline": base,
        "baseline_over_ours_first_line": round(base["first_line_s"] / ours["first_line_s"], 2),
        "baseline_over_ours_total": round(base["total_s"] / ours["total_s"], 2),
        "ours_over_baseline_peak_rss": round(ours["peak_rss_mb"] / base["peak_rss_mb"], 2),
        "same_lines": our_lines == base_lines,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark (see the module docstring); returns the figures per backend and
    writes them to ``--out`` when given. Raises RuntimeError when a command fails."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", type=Path, default=SQLITE_1M)
    parser.add_argument("--pg-url", default=PG_1M)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--whole-plan", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.whole_plan:
        _whole_plan_json(args.as_of, all_lines=True)
        return {}
    urls = {
        # Read-only: the shared database is never written (nor its journal mode changed).
        "sqlite": f"sqlite:///file:{args.sqlite}?mode=ro&uri=true",
        "postgresql": args.pg_url,
    }
    result: dict[str, Any] = {"as_of": args.as_of, "command": "dunning plan --all --json"}
    for backend in args.backends.split(","):
        result[backend] = _backend(urls[backend], args.as_of)
        print(backend, json.dumps(result[backend], indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
