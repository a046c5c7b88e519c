"""Screenshot a reminder run's page (named task runs, log lines) and the approval form in the
Prefect UI, with headless Chromium driven by Playwright.

``python scripts/screenshot_ops.py [--out docs/screenshots]``

Needs the Debian package ``chromium`` and ``pip install -e '.[screenshots]'`` (Playwright,
driving the system Chromium; no browser download). Starts a throwaway `prefect server start`
(SQLite in a temp dir), seeds a small portfolio, runs payment-reminders once, then starts a
second run with approval on (DUNNING_APPROVAL_MAX_MESSAGES=0) and opens its Resume form.
Writes ``run-page.png`` (the run graph with its named task runs, and the log lines) and
``approval-form.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dunning.db import get_engine, upgrade  # noqa: E402
from dunning.devtools.seed import seed_portfolio  # noqa: E402
from dunning.prefect_setup import local_server  # noqa: E402
from scripts.screenshot_artifacts import chromium  # noqa: E402

RUN_ONCE = """
import datetime as dt
from dunning.flows.payment_reminders import payment_reminders
report = payment_reminders(as_of=dt.datetime.fromisoformat('{as_of}'), batch_size=5)
print(report.flow_run_id)
"""


def _paused_run(api: str, timeout: float = 180) -> dict[str, Any]:
    """The first flow run in state Paused (the run waiting for approval)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = httpx.post(
            f"{api}/flow_runs/filter",
            timeout=30,
            json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}, "limit": 1},
        ).json()
        if runs:
            return dict(runs[0])
        time.sleep(1)
    raise SystemExit(f"no run paused for approval within {timeout} s")


def main(argv: list[str] | None = None) -> list[Path]:
    """The paths of the PNGs written."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshots")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    as_of = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    shots = [args.out / "run-page.png", args.out / "approval-form.png"]
    with tempfile.TemporaryDirectory(prefix="dunning-ops-shot-") as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'dunning.db'}"
        upgrade(db_url)
        seed_portfolio(get_engine(db_url), 40, 120, 7, as_of.date())
        with local_server(work / "prefect", ui=True) as env:
            env.update(
                {
                    "DUNNING_DATABASE_URL": db_url,
                    "DUNNING_HOME": str(work / "home"),
                    "PREFECT_LOGGING_LEVEL": "INFO",
                }
            )
            api = env["PREFECT_API_URL"]
            ui = api.removesuffix("/api")
            done = subprocess.run(
                [sys.executable, "-c", RUN_ONCE.format(as_of=as_of.isoformat())],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
                check=True,
            )
            run_id = done.stdout.strip().splitlines()[-1]
            # The second run (a later as-of, so there is something left to send) pauses.
            later = (as_of + dt.timedelta(days=7)).isoformat()
            waiting = subprocess.Popen(
                [sys.executable, "-c", RUN_ONCE.format(as_of=later)],
                cwd=ROOT,
                env={
                    **env,
                    "DUNNING_APPROVAL_ENABLED": "true",
                    "DUNNING_APPROVAL_MAX_MESSAGES": "0",
                },
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                paused = _paused_run(api)
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
                    )
                    page = browser.new_page(viewport={"width": 1400, "height": 1200})
                    page.goto(f"{ui}/runs/flow-run/{run_id}", wait_until="networkidle")
                    page.get_by_text("planned", exact=False).first.wait_for(timeout=30_000)
                    page.wait_for_timeout(2000)
                    page.screenshot(path=str(shots[0]), full_page=True)
                    # Tall enough for the whole form: the dialog scrolls inside itself.
                    page.set_viewport_size({"width": 1400, "height": 2700})
                    page.goto(f"{ui}/runs/flow-run/{paused['id']}", wait_until="networkidle")
                    page.get_by_role("button", name="Resume").first.click(timeout=30_000)
                    page.get_by_text("Approve this reminder run?").first.wait_for(timeout=30_000)
                    page.wait_for_timeout(1500)
                    page.screenshot(path=str(shots[1]), full_page=True)
                    browser.close()
            finally:
                # Let the paused run end without sending: reject it.
                httpx.post(
                    f"{api}/flow_runs/{_paused_id(api)}/resume",
                    timeout=30,
                    json={"run_input": {"decision": "reject", "note": "screenshot"}},
                )
                try:
                    waiting.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    waiting.kill()
    for shot in shots:
        print(shot)
    return shots


def _paused_id(api: str) -> str:
    runs = httpx.post(
        f"{api}/flow_runs/filter",
        timeout=30,
        json={"flow_runs": {"state": {"type": {"any_": ["PAUSED"]}}}, "limit": 1},
    ).json()
    return str(runs[0]["id"]) if runs else "none"


if __name__ == "__main__":
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    main()
