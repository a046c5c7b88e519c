"""The ``dunning`` command line."""

from __future__ import annotations

import importlib
import pkgutil
import sys

from dunning.cli.app import app, console


def _load_commands() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "app":
            importlib.import_module(f"{__name__}.{mod.name}")


def main() -> None:
    """Entry point of the ``dunning`` console script."""
    from dunning.errors import DunningError

    _load_commands()
    try:
        app()
    except DunningError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
