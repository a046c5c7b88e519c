"""The console script imports only the module of the command it runs.

`dunning plan` must print its first line fast (issue #19); importing every command module,
Prefect included, cost 1.7-3 s before any planning. The checks run the real entry point in a
fresh interpreter and read ``sys.modules`` after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dunning.cli as cli

PROBE = """
import json, sys
from dunning.cli import main
sys.argv = ["dunning", *json.loads(sys.argv[1])]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code or 0
print("PREFECT", "prefect" in sys.modules, "CODE", code)
"""


def _run(args: list[str], db: Path) -> tuple[bool, int, str]:
    env = {**os.environ, "DUNNING_DATABASE_URL": f"sqlite:///{db}", "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = out.stdout.splitlines()[-1].split()
    return line[1] == "True", int(line[3]), out.stdout + out.stderr


def test_plan_does_not_import_prefect_and_run_still_does(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    prefect, code, text = _run(["plan", "--help"], db)
    assert (prefect, code) == (False, 0), text
    assert "--as-of" in text
    prefect, code, text = _run(["db", "upgrade"], db)
    assert code == 0, text
    prefect, code, text = _run(["plan"], db)
    assert (prefect, code) == (False, 0), text
    _, code, text = _run(["run", "--help"], db)
    assert code == 0, text
    assert "--dry-run" in text


def test_root_help_lists_every_command_and_unknown_names_still_get_suggestions(
    tmp_path: Path,
) -> None:
    db = tmp_path / "x.sqlite"
    _, code, text = _run(["--help"], db)
    assert code == 0
    for name in cli.COMMAND_MODULES:
        assert f" {name} " in text, name
    _, code, text = _run(["pla"], db)
    assert code == 2 and "No such command" in text


def test_the_table_names_the_modules_of_every_command() -> None:
    """In a fresh interpreter, import the command modules one by one and attribute each new
    command (and each subcommand added to a shared sub-app) to the module whose import added
    it: that module must be in COMMAND_MODULES under the command's name, so a command added
    without a table entry fails here rather than with "No such command" in the field."""
    probe = """
import importlib, json, pkgutil
import dunning.cli as cli
from dunning.cli.app import app
def names():
    s = {(c.name or c.callback.__name__.replace("_", "-"), 0) for c in app.registered_commands}
    for g in app.registered_groups:
        s.add((g.name, len(g.typer_instance.registered_commands)))
    return s
seen, found = names(), []
mods = sorted(f"dunning.cli.{m.name}" for m in pkgutil.iter_modules(cli.__path__))
for module in [*mods, *cli.DEVTOOLS_COMMANDS]:
    importlib.import_module(module)
    now = names()
    found += [(n, module) for n, _ in now - seen]
    seen = now
print(json.dumps(found))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.splitlines()[-1])
    assert {name for name, _ in found} | {"db", "fakes", "import", "webhooks", "customer"} >= set(
        cli.COMMAND_MODULES
    )
    for name, module in found:
        assert module in cli.COMMAND_MODULES.get(name, ()), (name, module)
