"""Screenshot a reminder run's Artifacts tab in the Prefect UI with headless Chromium.

``python scripts/screenshot_artifacts.py [--out docs/screenshots/run-artifacts.png]``

Starts a throwaway `prefect server start` (SQLite in a temp dir), seeds a small portfolio,
runs payment-reminders once against it, then points Chromium (Debian package ``chromium``)
at /runs/flow-run/<id>?tab=Artifacts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dunning.db import get_engine, upgrade  # noqa: E402
from dunning.devtools.seed import seed_portfolio  # noqa: E402
from dunning.prefect_setup import local_server  # noqa: E402

RUN_ONCE = """
import datetime as dt
from dunning.flows.payment_reminders import payment_reminders
report = payment_reminders(as_of=dt.datetime.fromisoformat('{as_of}'), batch_size=5)
print(report.flow_run_id)
"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1400,1000",
    "--virtual-time-budget=15000",
]


def chromium() -> str:
    """The path of the Chromium binary; exits with the install command when missing."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("chromium not found: apt-get update && apt-get install -y chromium")


def screenshot(url: str, out: Path, profile: Path) -> None:
    """Nothing; writes Chromium's rendering of ``url`` to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}", url],
        check=True,
        timeout=120,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> Path:
    """The path of the PNG written."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/screenshots/run-artifacts.png")
    args = parser.parse_args(argv)
    # 15:00 UTC on a Tuesday: inside the send window of the seeded US and EU customers.
    as_of = dt.datetime(2026, 11, 24, 15, 0, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory(prefix="dunning-shot-") as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'dunning.db'}"
        upgrade(db_url)
        seed_portfolio(get_engine(db_url), 40, 120, 7, as_of.date())
        with local_server(work / "prefect", ui=True) as env:
            env.update({"DUNNING_DATABASE_URL": db_url, "DUNNING_HOME": str(work / "home")})
            done = subprocess.run(
                [sys.executable, "-c", RUN_ONCE.format(as_of=as_of.isoformat())],
                env=env,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            run_id = done.stdout.strip().splitlines()[-1]
            ui = env["PREFECT_API_URL"].removesuffix("/api")
            screenshot(f"{ui}/runs/flow-run/{run_id}?tab=Artifacts", args.out, work / "chrome")
            # The run page hides its Artifacts tab until the run has loaded, so the summary
            # artifact's own page is captured too: it shows the rendered markdown.
            summary = summary_artifact_id(env["PREFECT_API_URL"], run_id)
            detail = args.out.with_name(args.out.stem + "-summary.png")
            screenshot(f"{ui}/artifacts/artifact/{summary}", detail, work / "chrome")
    print(args.out, detail)
    return args.out


def summary_artifact_id(api: str, run_id: str) -> str:
    """The id of run ``run_id``'s reminder-run-summary artifact."""
    import httpx

    found = httpx.post(
        f"{api}/artifacts/filter",
        timeout=30,
        json={
            "artifacts": {
                "flow_run_id": {"any_": [run_id]},
                "key": {"any_": ["reminder-run-summary"]},
            },
            "sort": "CREATED_DESC",
            "limit": 1,
            "offset": 0,
        },
    ).json()
    if not found:
        raise SystemExit(f"run {run_id} has no reminder-run-summary artifact: {json.dumps(found)}")
    return str(found[0]["id"])


if __name__ == "__main__":
    main()
