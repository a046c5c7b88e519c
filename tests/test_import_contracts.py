"""The import-linter contracts (pyproject.toml) hold on the tree and fail on the cycles and
imports issue #15 removed, reintroduced in a copy of the package."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.slow  # each check builds the import graph of the whole package


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts, on the package ``root``/dunning."""
    env = {**os.environ, "PYTHONPATH": str(root)}  # the copy before the installed checkout
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(ROOT / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_contracts_hold_on_the_tree() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def status(report: str, contract: str) -> str:
    """KEPT or BROKEN: what lint-imports' summary says of the contract named ``contract``."""
    flat = " ".join(report.split())  # lint-imports wraps long contract names
    found = re.search(re.escape(contract) + r".*?\b(KEPT|BROKEN)\b", flat)
    assert found, (contract, report)
    return found.group(1)


#: (file under dunning/, code appended to it, contracts that must break)
REINTRODUCED = {
    "segments import policy": (
        "segments/rules.py",
        "from dunning.policy.model import Policy  # noqa\n",
        ["Segments depend on nothing in policy", "Layers"],
    ),
    "shards import the flow that imports them": (
        "flows/shards.py",
        "def _flow():\n    from dunning.flows.payment_reminders import payment_reminders\n",
        ["No cycles inside any package"],
    ),
    "the CLI imports a flow": (
        "cli/run.py",
        "def _flow():\n    from dunning.flows.payment_reminders import payment_reminders\n",
        ["The CLI does not import the flows"],
    ),
    "the product imports devtools": (
        "faultpoint.py",
        "from dunning.devtools import faults  # noqa\n",
        ["The product never imports dunning.devtools"],
    ),
    "the core imports Prefect": (
        "money.py",
        "import prefect  # noqa\n",
        ["The pure core"],
    ),
    "the voice channel imports the call URLs from dunning.voice again": (
        "channels/twilio_voice.py",
        "def _urls():\n    from dunning.voice.calls import Call  # noqa\n",
        ["No cycles between the top-level packages"],
    ),
    "the ledger imports the outbound package again (its outbox writer is dunning.ledger.outbox)": (
        "ledger/record.py",
        "def _subscribers():\n    from dunning.outbound.subscribers import EVENT_TYPES  # noqa\n",
        ["The ledger imports none of the packages that call it", "No cycles between the top-level"],
    ),
    "the ledger imports tracking's Outcome again (it moved to dunning.core.status)": (
        "ledger/events.py",
        "def _outcome():\n    from dunning.tracking.status import parse_keyword  # noqa\n",
        ["The ledger imports none of the packages that call it"],
    ),
    "the ledger imports the payment path back from tracking": (
        "ledger/payments.py",
        "import dunning.tracking  # noqa\n",
        ["The ledger imports none of the packages that call it"],
    ),
    "the ledger imports delivery": (
        "ledger/plan.py",
        "import dunning.delivery  # noqa\n",
        ["Layers"],
    ),
    "the core imports the database": (
        "policy/model.py",
        "from dunning.db import get_engine  # noqa\n",
        ["The pure core", "Layers"],
    ),
}


@pytest.mark.parametrize("case", sorted(REINTRODUCED))
def test_the_contracts_fail_when_an_import_comes_back(case: str, tmp_path: Path) -> None:
    relative, code, broken = REINTRODUCED[case]
    shutil.copytree(
        ROOT / "dunning", tmp_path / "dunning", ignore=shutil.ignore_patterns("__pycache__")
    )
    target = tmp_path / "dunning" / relative
    target.write_text(target.read_text() + "\n\n" + code)
    done = lint_imports(tmp_path)
    assert done.returncode != 0, done.stdout
    for name in broken:
        assert status(done.stdout, name) == "BROKEN", (name, done.stdout)
