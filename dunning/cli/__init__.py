"""The ``dunning`` command line."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from rich.markup import escape

from dunning.cli.app import app, console

#: Command modules of the test and demo tooling (``dunning seed``, ``dunning fakes``), loaded by
#: name so the product has no static import of ``dunning.devtools``.
DEVTOOLS_COMMANDS = ("dunning.devtools.cli_seed", "dunning.devtools.cli_fakes")

_OPERATE = "dunning.cli.operate"
_POLICY = "dunning.cli.policy"
_RUN = "dunning.cli.run"
_SOURCES = "dunning.cli.sources"
_WEBHOOKS = "dunning.cli.webhooks"

#: Top-level command (or sub-app) name -> the modules that register it or its subcommands.
#: ``main`` imports only these for the command being run, so ``dunning plan`` does not pay for
#: Prefect and the other command modules (1.7-3 s of imports). tests/test_cli_lazy.py checks
#: this table against what each module registers: a new command must be added here.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "customer": (_OPERATE, "dunning.cli.privacy", "dunning.cli.timeline"),
    "db": ("dunning.cli.db",),
    "experiments": ("dunning.cli.experiments",),
    "fakes": ("dunning.devtools.cli_fakes",),
    "forecast": (_POLICY,),
    "import": ("dunning.cli.imports",),
    "inbox": (_OPERATE,),
    "invoice": (_OPERATE,),
    "ledger": (_RUN,),
    "metrics": (_WEBHOOKS,),
    "plan": (_POLICY,),
    "preview": ("dunning.cli.preview",),
    "recovery": ("dunning.cli.recovery",),
    "reminder": (_OPERATE,),
    "replies": (_WEBHOOKS,),
    "report": ("dunning.cli.collections",),
    "run": (_RUN,),
    "schedule": ("dunning.cli.schedule",),
    "seed": ("dunning.devtools.cli_seed",),
    "segments": (_POLICY,),
    "setup-prefect": ("dunning.cli.prefect_setup",),
    "sources": (_SOURCES,),
    "subscribers": ("dunning.cli.subscribers",),
    "sync": (_SOURCES,),
    "webhooks": (_WEBHOOKS,),
}


def _load_commands() -> None:
    """Import every command module (each registers its commands on ``app`` at import)."""
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "app":
            importlib.import_module(f"{__name__}.{mod.name}")
    for name in DEVTOOLS_COMMANDS:
        importlib.import_module(name)


def _load_commands_for(argv: list[str]) -> None:
    """Import only the modules of the command ``argv`` (the arguments after ``dunning``) runs.

    The root group takes no option with a value, so the first argument not starting with ``-``
    names the command. Without one (``dunning``, ``dunning --help``, shell completion, which
    passes its words in the environment) or with a name not in COMMAND_MODULES (Click then
    says "No such command" and suggests the close ones), every module is imported as before.
    """
    name = next((arg for arg in argv if not arg.startswith("-")), None)
    modules = COMMAND_MODULES.get(name) if name is not None else None
    if modules is None:
        _load_commands()
        return
    for module in modules:
        importlib.import_module(module)


def main() -> None:
    """Entry point of the ``dunning`` console script."""
    from dunning.errors import DunningError

    if "--json" in sys.argv[1:]:
        # Machine-readable mode: only the JSON on stdout, only warnings on stderr. Set before
        # any command module imports Prefect, which reads its logging settings at import.
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # Prefect's temporary server gets 20 s to start by default; its first start creates its
    # database, which outlasts that on a busy laptop or CI box (`make demo` on a fresh machine
    # failed so). Prefect reads its settings once, at import, so this must precede every command
    # module.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    _load_commands_for(sys.argv[1:])
    try:
        app()
    except DunningError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
