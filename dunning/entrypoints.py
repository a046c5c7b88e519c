"""Where each flow is, by entrypoint string: the one place that knows both forms.

In a checkout of the repository a flow's entrypoint is the one prefect.yaml names, a path
relative to the checkout, e.g. ``flows/payment_reminders.py:payment_reminders`` (a two-line
file that imports the flow). An installed wheel has no ``flows/`` folder: there the entrypoint
is the module form, ``dunning.flows.payment_reminders:payment_reminders``. Both load the same
flow object.

The CLI loads flows through :func:`load_flow` rather than importing ``dunning.flows``, so the
command line does not depend on the flow code (an import-linter contract checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The repository root when this package runs from a checkout (it has prefect.yaml and flows/).
CHECKOUT = Path(__file__).resolve().parent.parent
#: The folder of the deployment entrypoint files prefect.yaml names, relative to the checkout.
FLOWS_DIR = "flows"
#: The package the flows live in.
FLOWS_PACKAGE = "dunning.flows"

#: The payment-reminders flow: (module in dunning.flows, flow function).
PAYMENT_REMINDERS = ("payment_reminders", "payment_reminders")


def checkout_entrypoint(module: str, function: str) -> str:
    """The entrypoint prefect.yaml names for ``function`` of ``dunning.flows.<module>``, e.g.
    ``flows/payment_reminders.py:payment_reminders`` (relative to the checkout)."""
    return f"{FLOWS_DIR}/{module}.py:{function}"


def module_entrypoint(entrypoint: str) -> str:
    """The module form of a prefect.yaml entrypoint: ``flows/dry_run.py:reminders_dry_run`` ->
    ``dunning.flows.dry_run:reminders_dry_run``; ValueError for any other shape."""
    path, sep, function = entrypoint.partition(":")
    folder, slash, file = path.partition("/")
    if not (sep and slash and folder == FLOWS_DIR and file.endswith(".py") and "/" not in file):
        raise ValueError(
            f"entrypoint {entrypoint!r} is not of the form {FLOWS_DIR}/<module>.py:<flow>"
        )
    return f"{FLOWS_PACKAGE}.{file.removesuffix('.py')}:{function}"


def entrypoint(module: str, function: str) -> str:
    """The entrypoint to load ``function`` of ``dunning.flows.<module>`` by: prefect.yaml's
    file (as an absolute path) in a checkout, else the module form."""
    relative = checkout_entrypoint(module, function)
    script = CHECKOUT / relative.partition(":")[0]
    if (CHECKOUT / "prefect.yaml").is_file() and script.is_file():
        return f"{script}:{function}"
    return module_entrypoint(relative)


def load_flow(module: str, function: str) -> Any:
    """The flow ``function`` of ``dunning.flows.<module>``, loaded by its entrypoint string
    with Prefect's loader (import errors raise as they are: no placeholder flow)."""
    from prefect.flows import load_flow_from_entrypoint

    return load_flow_from_entrypoint(entrypoint(module, function), use_placeholder_flow=False)
