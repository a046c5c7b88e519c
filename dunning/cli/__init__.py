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


def _load_commands() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "app":
            importlib.import_module(f"{__name__}.{mod.name}")
    for name in DEVTOOLS_COMMANDS:
        importlib.import_module(name)


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
    _load_commands()
    try:
        app()
    except DunningError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
