"""Delivery benchmark: our flow vs the naive one-task-per-message flow vs the raw SDK floor.

    .venv/bin/python -m bench.run                       # `make bench`: ~2,000 messages
    .venv/bin/python -m bench.run --invoices 520000 --customers 100000 \
        --out bench/results/delivery_20k.json

For each backend (SQLite, and PostgreSQL when reachable) it seeds a portfolio, starts the fake
providers in their own process (20 ms latency, no rate limit) and a Prefect API, and measures
ours, naive and floor; then emails/s with and without bulk Mail Send, SMS under a rate limit,
and the plan-only benchmark at portfolio scale. Prints the figures and writes them as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    AS_OF,
    DEFAULT_PG,
    DELIVERY_TASKS,
    ROOT,
    Fakes,
    bench_database,
    delivery_window_s,
    environment,
    fake_providers,
    figures,
    flush_prefect_workers,
    ledger_counts,
    measured,
    per_second_windows,
    prefect_api_calls,
    recorded_task_runs,
    reset_ledger,
    seed,
    task_run_names,
)


def _settle(url: str, fakes: Fakes) -> tuple[dict[str, Any], list[str]]:
    """Ledger and provider counts after a contender ran and the provider's receive times;
    then a clean slate for the next contender."""
    counts = ledger_counts(url)
    received = fakes.received()
    reset_ledger(url)
    fakes.reset()
    return (
        {
            "ledger": counts,
            "provider_received": len(received),
            "ledger_matches_provider": counts.get("sent", 0) == len(received),
        },
        [str(r["received_at"]) for r in received],
    )


def run_ours(url: str, fakes: Fakes, args: argparse.Namespace) -> dict[str, Any]:
    """Figures of one end-to-end run of the payment_reminders flow."""
    from dunning.config import get_settings
    from dunning.flows.payment_reminders import batches_of, payment_reminders
    from dunning.params import RunParameters
    from dunning.render.processes import processes_for

    run = RunParameters(
        as_of=AS_OF,
        concurrency=args.concurrency,
        batch_size=args.batch_size,
        max_messages=args.max_messages,
    )
    with prefect_api_calls() as calls:
        with measured() as m:
            state = payment_reminders(**run.model_dump(), return_state=True)
        flush_prefect_workers()  # the run's events and logs still queued count too
    state.result()
    planned = sum(ledger_counts(url).values())
    # The batches a run of this size fans out to, plus its fixed steps (reconcile, fetch,
    # plan, record, report, ...). Why the fixed steps are read from the server: they are a
    # handful run one after another, and a hand-kept count broke each time a step was added;
    # what loses records is the fan-out, whose count is computed here independently.
    batches = len(batches_of(list(range(planned)), args.batch_size, run.max_tasks))
    recorded_task_runs(state.state_details.flow_run_id, batches + 1)  # let the records land
    fixed = [n for n in task_run_names(state.state_details.flow_run_id) if DELIVERY_TASKS not in n]
    created = len(fixed) + batches
    m.extra["task_runs_created"] = created
    m.extra["task_runs_recorded"] = recorded_task_runs(state.state_details.flow_run_id, created)
    m.extra["in_flight_sends"] = in_flight(args)
    out, _ = _settle(url, fakes)
    figs = {**figures(m, out["ledger"].get("sent", 0)), **out}
    # Every request and event this process sent the Prefect API during the run (Prefect Cloud
    # rate-limits its API; a run must not cost a call per message).
    figs["prefect_api_calls"] = calls.per_1000(figs["messages"])
    # Worker processes that composed ours' large batches (DUNNING_COMPOSE_PROCESSES; the floors
    # compose in their threads).
    figs["compose_processes"] = processes_for(get_settings().channels)
    # Why a second figure: the end-to-end wall includes fetch, segment and plan over the whole
    # portfolio, which the floor (and any send loop) does not do; this is the sending part.
    window = delivery_window_s(state.state_details.flow_run_id)
    figs["delivery_phase"] = {
        "wall_s": round(window, 3),
        "messages_per_s": round(figs["messages"] / window, 1) if window else None,
    }
    return figs


def in_flight(args: argparse.Namespace) -> int:
    """Sends in flight at most: delivery tasks at once x send threads per batch."""
    from dunning.config import get_settings

    return int(args.concurrency * get_settings().channels.send_concurrency)


def run_naive(url: str, fakes: Fakes, args: argparse.Namespace) -> dict[str, Any]:
    """Figures of one run of the tutorial-style flow (one task per reminder)."""
    from bench.naive_flow import FIXED_TASKS, naive_reminders

    with measured() as m:
        state = naive_reminders(
            AS_OF, args.naive_max_messages or args.max_messages, return_state=True
        )
    planned = state.result()
    created = FIXED_TASKS + planned
    m.extra["task_runs_created"] = created
    m.extra["task_runs_recorded"] = recorded_task_runs(state.state_details.flow_run_id, created)
    out, _ = _settle(url, fakes)
    return {**figures(m, out["ledger"].get("sent", 0)), **out}


def _plan_ids(url: str, max_messages: int | None, channels: list[str] | None = None) -> list[int]:
    """Planned ledger ids of the run's send lines (untimed set-up of the floor)."""
    from dunning import ledger
    from dunning.db import get_engine
    from dunning.policy import load_policy, plan
    from dunning.portfolio import load_portfolio
    from dunning.tasks.plan import select_lines

    engine = get_engine(url)
    lines = select_lines(
        plan(load_portfolio(engine), AS_OF, load_policy(None)),
        channels=channels,
        segments=None,
        stages=None,
        max_messages=max_messages,
        as_of=AS_OF,
    )
    return ledger.record_plan(engine, lines[lines["action"] == "send"], run_id="bench-floor")


def run_floor(url: str, fakes: Fakes, args: argparse.Namespace) -> dict[str, Any]:
    """Figures of the floor, and of emails alone with and without bulk Mail Send."""
    from bench.floor import claimed_data, composed_messages, send_floor
    from dunning.channels import get_channel
    from dunning.db import get_engine

    messages = composed_messages(get_engine(url), _plan_ids(url, args.max_messages))
    reset_ledger(url)
    channels = {"email": get_channel("email"), "sms": get_channel("sms")}
    with measured() as m:
        # args.concurrency units at once, each sent by send_concurrency threads: the same
        # sends in flight as ours (tasks at once x threads per batch).
        results = send_floor(messages, channels, args.batch_size, args.concurrency)
    sent = sum(r.ok for r in results)
    received = len(fakes.received())
    fakes.reset()
    out: dict[str, Any] = {
        **figures(m, sent),
        "provider_received": received,
        "in_flight_sends": in_flight(args),
    }

    # The same again, composing inside the timed part: what is left between this and ours
    # is orchestration and bookkeeping (ledger, Prefect), not composition.
    data = claimed_data(get_engine(url), _plan_ids(url, args.max_messages))
    reset_ledger(url)
    with measured() as m:
        results = send_floor(data, channels, args.batch_size, args.concurrency)
    out["composed"] = {
        **figures(m, sum(r.ok for r in results)),
        "provider_received": len(fakes.received()),
    }
    fakes.reset()

    emails = [msg for msg in messages if msg.channel == "email"]
    for label, bulk in (("email_bulk", 1000), ("email_per_message", 1)):
        channel = get_channel("email")
        channel.bulk_size = bulk  # type: ignore[attr-defined]
        with measured() as m:
            results = send_floor(emails, {"email": channel}, args.batch_size, args.concurrency)
        out[label] = {
            **figures(m, sum(r.ok for r in results)),
            "provider_received": len(fakes.received()),
        }
        fakes.reset()
    return out


def run_rate_limited(url: str, fakes: Fakes, args: argparse.Namespace) -> dict[str, Any]:
    """SMS throughput of our delivery core under DUNNING_SMS_RATE_LIMIT, measured from the
    fake's receive timestamps: the first ``rate_messages`` planned SMS, sent in batches by
    ``concurrency`` threads like the flow's delivery tasks."""
    from concurrent.futures import ThreadPoolExecutor

    from dunning.channels import get_channel
    from dunning.db import get_engine
    from dunning.delivery import deliver_batch
    from dunning.flows.payment_reminders import batches_of
    from dunning.render import compose

    ids = _plan_ids(url, None, channels=["sms"])[: args.rate_messages]
    with environment({"DUNNING_SMS_RATE_LIMIT": str(args.sms_rate_limit)}):
        channels = {"sms": get_channel("sms")}
    batches = batches_of(ids, max(1, len(ids) // (4 * args.concurrency)), 10_000)
    with measured() as m, ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(
            pool.map(
                lambda b: deliver_batch(
                    get_engine(url), b, claimer="bench-rate", channels=channels, compose=compose
                ),
                batches,
            )
        )
    out, stamps = _settle(url, fakes)
    return {
        **figures(m, out["ledger"].get("sent", 0)),
        **out,
        "rate": _rate_figures(stamps, args.sms_rate_limit),
    }


def _rate_figures(stamps: list[str], limit: float) -> dict[str, Any]:
    """Per-second counts, the sustained rate and the worst window, against ``limit``."""
    windows = per_second_windows(stamps)
    full = windows[:-1]  # the last window is partial
    sustained = sum(full) / len(full) if full else None
    return {
        "limit_per_s": limit,
        "per_second": windows,
        "sustained_per_s": sustained,
        "max_window": max(full) if full else None,
        "within_10pct": sustained is not None and sustained >= 0.9 * limit,
        "never_above": bool(full) and max(full) <= limit,
    }


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """All delivery figures on one database backend."""
    from dunning.config import reload_settings

    out: dict[str, Any] = {"backend": backend}
    with (
        bench_database(backend, args.pg_url, workdir) as url,
        fake_providers(args.latency_ms) as fakes,
        environment(
            {"DUNNING_DATABASE_URL": url, "DUNNING_HOME": str(workdir / "home"), **fakes.env}
        ),
    ):
        reload_settings()
        with measured() as m:
            out["seed"] = seed(url, args.invoices, args.customers)
        out["seed"]["wall_s"] = round(m.wall_s, 1)
        _say(f"[{backend}] seeded {out['seed']['invoices']} invoices in {m.wall_s:.1f}s")
        out["ours"] = run_ours(url, fakes, args)
        _say(f"[{backend}] ours: {_line(out['ours'])}")
        if not args.skip_naive:
            out["naive"] = run_naive(url, fakes, args)
            _say(f"[{backend}] naive: {_line(out['naive'])}")
        out["floor"] = run_floor(url, fakes, args)
        _say(f"[{backend}] floor: {_line(out['floor'])}")
        for label in ("composed", "email_bulk", "email_per_message"):
            _say(f"[{backend}] {label}: {_line(out['floor'][label])}")
        if args.concurrency_sweep:
            out["concurrency_sweep"] = run_sweep(url, args, backend)
        if args.sms_rate_limit and backend == args.backends[0]:
            limited = run_rate_limited(url, fakes, args)
            out["sms_rate_limited"] = limited
            _say(f"[{backend}] sms at {args.sms_rate_limit}/s: {_line(limited)}")
    out["ratios"] = _ratios(out)
    return out


#: The sweep's provider latencies (ms) and delivery concurrencies (the flow's parameter).
SWEEP_LATENCIES_MS = (20.0, 200.0)
SWEEP_CONCURRENCY = (4, 8, 16, 32)


def sweep_batch_size(args: argparse.Namespace) -> int:
    """The sweep's batch size: ``--sweep-batch-size``, else small enough that the highest
    concurrency has two batches per slot (one batch per cell would measure nothing)."""
    if args.sweep_batch_size:
        return int(args.sweep_batch_size)
    return max(1, args.sweep_max_messages // (2 * max(SWEEP_CONCURRENCY)))


def run_sweep(url: str, args: argparse.Namespace, backend: str) -> list[dict[str, Any]]:
    """Ours' throughput against the flow's ``concurrency`` at each provider latency: one
    end-to-end run per (latency, concurrency), each from a fresh ledger, with fakes started at
    that latency. Capped at ``--sweep-max-messages`` per run (the whole grid is 8 runs)."""
    rows = []
    for latency in SWEEP_LATENCIES_MS:
        with fake_providers(latency) as fakes, environment(fakes.env):
            for concurrency in SWEEP_CONCURRENCY:
                run_args = argparse.Namespace(
                    **{
                        **vars(args),
                        "concurrency": concurrency,
                        "max_messages": args.sweep_max_messages,
                        "batch_size": sweep_batch_size(args),
                    }
                )
                figs = run_ours(url, fakes, run_args)
                row = {
                    "latency_ms": latency,
                    "concurrency": concurrency,
                    "messages": figs["messages"],
                    "messages_per_s": figs["messages_per_s"],
                    "delivery_phase_messages_per_s": figs["delivery_phase"]["messages_per_s"],
                    "in_flight_sends": figs["in_flight_sends"],
                    "batch_size": run_args.batch_size,
                    "peak_rss_mb": figs["peak_rss_mb"],
                }
                rows.append(row)
                _say(
                    f"[{backend}] sweep {latency:.0f} ms x {concurrency}: "
                    f"{row['messages_per_s']}/s end to end, "
                    f"{row['delivery_phase_messages_per_s']}/s delivering"
                )
    return rows


def _ratios(out: dict[str, Any]) -> dict[str, float | None]:
    def rate(key: str) -> float | None:
        return (out.get(key) or {}).get("messages_per_s")

    ours, naive, floor = rate("ours"), rate("naive"), rate("floor")
    composed = ((out.get("floor") or {}).get("composed") or {}).get("messages_per_s")
    phase = ((out.get("ours") or {}).get("delivery_phase") or {}).get("messages_per_s")
    return {
        "ours_over_naive": round(ours / naive, 2) if ours and naive else None,
        "ours_over_floor": round(ours / floor, 2) if ours and floor else None,
        "ours_over_floor_composed": round(ours / composed, 2) if ours and composed else None,
        "ours_delivery_phase_over_floor": round(phase / floor, 2) if phase and floor else None,
    }


def _line(fig: dict[str, Any]) -> str:
    tasks = (
        f", task runs {fig['task_runs_recorded']}/{fig['task_runs_created']} recorded"
        if "task_runs_created" in fig
        else ""
    )
    if "delivery_phase" in fig:
        tasks += (
            f", delivery phase {fig['delivery_phase']['wall_s']}s = "
            f"{fig['delivery_phase']['messages_per_s']}/s"
        )
    return (
        f"{fig['messages']} msgs in {fig['wall_s']}s = {fig['messages_per_s']}/s, "
        f"{fig['cpu_ms_per_message']} ms CPU/msg, peak RSS {fig['peak_rss_mb']} MB{tasks}"
    )


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_plan_bench(invoices: int, customers: int, workdir: Path) -> dict[str, Any] | None:
    """The plan-only benchmark's JSON (bench/bench_plan.py in a child process), if it exists."""
    script = ROOT / "bench" / "bench_plan.py"
    if not script.is_file() or invoices <= 0:
        return None
    target = workdir / "plan.json"
    subprocess.run(
        [
            sys.executable,
            str(script),
            "--invoices",
            str(invoices),
            "--customers",
            str(customers),
            "--out",
            str(target),
        ],
        check=True,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    return dict(json.loads(target.read_text()))


#: The portfolio-scale benchmarks bench/run.py includes: option prefix -> module, each with
#: ``main(argv) -> dict`` (written by their own modules; one not on main yet is reported as
#: not measured).
SCALE_BENCHES = {
    "hourly": "bench.bench_hourly",
    "snapshot": "bench.bench_segments",
    "planstream": "bench.bench_plan_stream",
}
#: Keys of the summary each scale benchmark provides, per backend.
SCALE_KEYS = {
    "hourly": (
        "noop_hourly_run_s_1m",
        "noop_hourly_run_to_report_s_1m",
        "noop_hourly_run_peak_rss_mb",
    ),
    "snapshot": ("segment_snapshot_s_1m", "segment_snapshot_peak_rss_mb"),
    "planstream": ("plan_first_line_s_1m", "plan_json_lines_per_s_1m", "plan_stream_peak_rss_mb"),
}


def run_scale_bench(name: str, argv: list[str]) -> dict[str, Any]:
    """The JSON of scale benchmark ``name`` run with ``argv``, or why it was not measured."""
    import importlib

    module_name = SCALE_BENCHES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return {"measured": False, "reason": f"{module_name} is not in this checkout"}
    _say(f"[{name}] {module_name}.main({argv})")
    try:
        result = module.main(argv)
    except SystemExit as exc:  # argparse refused the options
        return {"measured": False, "reason": f"{module_name} exited ({exc.code}) on {argv}"}
    except Exception as exc:  # noqa: BLE001 - the delivery figures are kept either way
        _say(f"[{name}] failed: {type(exc).__name__}: {exc}")
        return {"measured": False, "reason": f"{module_name} failed: {type(exc).__name__}: {exc}"}
    return {"measured": True, "argv": argv, **dict(result)}


def _pick(result: dict[str, Any] | None, backend: str, key: str) -> Any:
    """``key`` for ``backend`` in a scale benchmark's JSON: under ``[backend]``,
    ``["backends"][backend]``, or at the top when the run was of that one backend."""
    if not result or not result.get("measured"):
        return None
    for scope in (result.get(backend), (result.get("backends") or {}).get(backend)):
        if isinstance(scope, dict) and key in scope:
            return scope[key]
    if key in result and result.get("backend", backend) == backend:
        return result[key]
    return None


def summary(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per backend, the figures issue #19 names (ratios in one run; seconds and MB as
    measured on this machine): ours over the floor that composes, the floor, the naive flow;
    the hourly no-op run and the segment snapshot at 1M invoices; Prefect API calls per 1,000
    messages; and the peak RSS of each."""
    out: dict[str, dict[str, Any]] = {}
    scale = result.get("scale") or {}
    for backend, figs in result["backends"].items():
        ratios = figs.get("ratios") or {}
        ours = figs.get("ours") or {}
        floor = figs.get("floor") or {}
        row: dict[str, Any] = {
            "ours_over_floor_composed": ratios.get("ours_over_floor_composed"),
            "ours_over_floor": ratios.get("ours_over_floor"),
            "ours_over_naive": ratios.get("ours_over_naive"),
            "prefect_api_calls_per_1000_messages": (ours.get("prefect_api_calls") or {}).get(
                "per_1000_messages"
            ),
            "ours_peak_rss_mb": ours.get("peak_rss_mb"),
            "floor_peak_rss_mb": floor.get("peak_rss_mb"),
            "floor_composed_peak_rss_mb": (floor.get("composed") or {}).get("peak_rss_mb"),
            "naive_peak_rss_mb": (figs.get("naive") or {}).get("peak_rss_mb"),
        }
        for name, keys in SCALE_KEYS.items():
            for key in keys:
                row[key] = _pick(scale.get(name), backend, key)
        out[backend] = row
    for backend in SCALE_BACKENDS:
        if backend not in out and any(
            _pick(scale.get(n), backend, k) is not None for n, ks in SCALE_KEYS.items() for k in ks
        ):
            out[backend] = {
                key: _pick(scale.get(name), backend, key)
                for name, keys in SCALE_KEYS.items()
                for key in keys
            }
    return out


SCALE_BACKENDS = ("sqlite", "postgresql")


def _postgres_reachable(url: str) -> bool:
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        psycopg.connect(admin, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The benchmark's options."""
    p = argparse.ArgumentParser(description="Delivery benchmark: ours vs naive vs floor.")
    p.add_argument("--invoices", type=int, default=52_000, help="Seeded invoices (~4%% send).")
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--max-messages", type=int, default=None, help="Cap sends per run.")
    p.add_argument("--latency-ms", type=float, default=20.0, help="Fake provider latency.")
    p.add_argument("--concurrency", type=int, default=4, help="Delivery tasks at once.")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--pg-url", default=os.environ.get("DUNNING_BENCH_PG_URL", DEFAULT_PG))
    p.add_argument("--skip-naive", action="store_true")
    p.add_argument(
        "--naive-max-messages",
        type=int,
        default=None,
        help="Cap the naive flow's sends (it is ~10x slower); its rate at a smaller "
        "size is an upper bound of its rate at the full size.",
    )
    p.add_argument("--sms-rate-limit", type=float, default=50.0, help="0 = skip that phase.")
    p.add_argument("--rate-messages", type=int, default=500)
    p.add_argument("--plan-invoices", type=int, default=1_000_000, help="0 = skip plan bench.")
    p.add_argument("--plan-customers", type=int, default=200_000)
    p.add_argument(
        "--concurrency-sweep",
        action="store_true",
        help="Also run ours at concurrency 4/8/16/32 with 20 ms and 200 ms provider latency.",
    )
    p.add_argument(
        "--sweep-max-messages",
        type=int,
        default=6400,
        help="Messages per sweep run (8 runs per backend; the seeded portfolio must have "
        "that many due: ~160,000 invoices).",
    )
    p.add_argument(
        "--sweep-batch-size",
        type=int,
        default=None,
        help="Batch size of the sweep's runs (default: --sweep-max-messages / 64, so "
        "concurrency 32 has two batches per slot).",
    )
    for name, module in SCALE_BENCHES.items():
        p.add_argument(
            f"--{name}-args",
            default=None,
            help=f"Run {module}.main with these options (one string, shell-quoted; '' for "
            "its defaults: the shared 1M databases /work/benchdata/1m.sqlite and bench_1m); "
            "unset: not run.",
        )
    p.add_argument(
        "--delivery",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Run the delivery benchmark (--no-delivery: only the scale benchmarks).",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "delivery.json")
    args = p.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The benchmark's results, after printing them and writing them to ``--out``."""
    from prefect.settings import get_current_settings
    from prefect.testing.utilities import prefect_test_harness

    args = parse_args(argv)
    if "postgresql" in args.backends and not _postgres_reachable(args.pg_url):
        _say(f"PostgreSQL at {args.pg_url} is unreachable: skipping it (set --pg-url)")
        args.backends = [b for b in args.backends if b != "postgresql"]
    result: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "backends": {},
    }
    # Why reuse a configured API: a second temporary server nested in a running one (a test
    # session's) leaves the events client on the first, so no task run would be recorded.
    api = (
        contextlib.nullcontext()
        if get_current_settings().api.url
        else prefect_test_harness(server_startup_timeout=120)
    )
    with tempfile.TemporaryDirectory(prefix="dunning-bench-") as tmp, api:
        for backend in args.backends if args.delivery else []:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            result["backends"][backend] = bench_backend(backend, args, workdir)
        result["plan"] = run_plan_bench(args.plan_invoices, args.plan_customers, Path(tmp))
        result["scale"] = {
            name: (
                run_scale_bench(name, shlex.split(options))
                if options is not None
                else {"measured": False, "reason": f"not run (--{name}-args unset)"}
            )
            for name in SCALE_BENCHES
            for options in [getattr(args, f"{name}_args")]
        }
    result["summary"] = summary(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for backend, row in result["summary"].items():
        _say(f"[{backend}] summary: {row}")
    _say(f"results written to {args.out}")
    return result


if __name__ == "__main__":
    main()
