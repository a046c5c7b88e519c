"""The wheel installs only the ``dunning`` package, carries its templates, default policy and
migrations, and runs the demo (db upgrade, seed, run) in an empty directory outside the
checkout, in a fresh virtualenv that has the wheel and no path to the checkout.

Offline and fast: the wheel is built without dependencies, and the fresh venv sees this test
venv's site-packages through a .pth file (its .pth files, such as the editable install of the
checkout, are not processed there), so only the wheel provides ``dunning``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.prefect]


def _ok(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a clean copy of the sources (a stale build/ cannot leak in); the
    copy keeps the repository's top-level folders, which must stay out of the wheel."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("dunning", "flows", "tasks", "segments", "deployments", "templates"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    _ok([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)])
    (built,) = dist.glob("dunning-*.whl")
    return built


def test_the_wheel_holds_only_the_dunning_package_and_its_data(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert tops == {"dunning", f"dunning-{version}.dist-info"}, tops  # no flows, tasks, ...
    assert "dunning/policy/default_policy.toml" in names
    templates = ROOT / "dunning" / "templates"
    shipped = {
        f"dunning/templates/{p.relative_to(templates).as_posix()}"
        for p in templates.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped and shipped <= set(names), sorted(shipped - set(names))
    assert any(n.startswith("dunning/db/migrations/versions/") for n in names)
    assert "dunning/db/migrations/env.py" in names
    assert "dunning/py.typed" in names


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(
    wheel: Path, tmp_path: Path, prefect_server: None
) -> None:
    from prefect.settings import PREFECT_API_URL

    venv = tmp_path / "venv"
    _ok([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        _ok(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "_test_dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    _ok(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-index", str(wheel)]
    )

    work = tmp_path / "empty"
    work.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DUNNING_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        {
            "DUNNING_HOME": str(work / ".dunning"),
            "DUNNING_DATABASE_URL": f"sqlite:///{work / 'dunning.db'}",
            "DUNNING_EMAIL_PROVIDER": "outbox",
            "DUNNING_SMS_PROVIDER": "outbox",
            "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        }
    )
    where = _ok([str(python), "-c", "import dunning; print(dunning.__file__)"], cwd=work, env=env)
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the wheel, not the checkout

    dunning = str(venv / "bin" / "dunning")
    _ok([dunning, "db", "upgrade"], cwd=work, env=env)
    _ok(
        [dunning, "seed", "--customers", "20", "--invoices", "60", "--seed", "7"]
        + ["--as-of", "2026-11-24", "--reset"],
        cwd=work,
        env=env,
    )
    run = _ok([dunning, "run", "--as-of", "2026-11-24T15:00:00Z", "--json"], cwd=work, env=env)
    summary = json.loads(run.stdout)
    sent = summary["counts"]["sent"]
    assert sent > 0 and summary["counts"]["failed"] == 0, summary
    outbox = [p for p in (work / ".dunning" / "outbox").rglob("*") if p.is_file()]
    assert len(outbox) == sent
    # Nothing else appears in the working directory: the database (and SQLite's WAL files)
    # where DUNNING_DATABASE_URL says, the rest under DUNNING_HOME.
    assert all(p.name == ".dunning" or p.name.startswith("dunning.db") for p in work.iterdir())
