"""Serve the flows without a worker: ``python -m deployments.serve [--env local]``.

For users who do not run a work pool: this process polls the Prefect API for scheduled and
manual runs of payment-reminders, reminders-dry-run, track-responses and operator-action and
runs them itself.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path
from typing import Any

ENVIRONMENTS = Path(__file__).parent / "environments"


def load_environment(name: str) -> dict[str, Any]:
    """The settings of environment ``name`` from deployments/environments/<name>.toml."""
    path = ENVIRONMENTS / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in ENVIRONMENTS.glob("*.toml")))
        raise SystemExit(f"unknown environment {name!r}: choose one of {known}")
    with path.open("rb") as fh:
        return tomllib.load(fh)


def deployments(env: dict[str, Any]) -> list[Any]:
    """The runner deployments of the flows (payment-reminders, its dry run, track-responses,
    operator-action), configured from ``env``."""
    from dunning.flows.dry_run import reminders_dry_run
    from dunning.flows.operator_action import operator_action
    from dunning.flows.payment_reminders import payment_reminders
    from dunning.flows.track_responses import track_responses
    from dunning.params import RunParameters

    rem = env["payment_reminders"]
    trk = env["track_responses"]
    return [
        payment_reminders.to_deployment(
            name="payment-reminders",
            cron=rem["cron"],
            # Checked by the model, then only the settings given: the rest keep the defaults.
            parameters=RunParameters(**rem.get("parameters", {})).model_dump(
                mode="json", exclude_unset=True
            ),
            tags=["dunning", "reminders"],
            description="Plan and send the payment reminders due this hour, once each.",
        ),
        reminders_dry_run.to_deployment(
            name="dry-run",
            tags=["dunning", "reminders", "preview"],
            description="Preview a reminder run without sending anything (start it from the UI).",
        ),
        track_responses.to_deployment(
            name="track-responses",
            interval=int(trk["interval_seconds"]),
            parameters=trk.get("parameters", {}),
            tags=["dunning", "tracking"],
            description="Apply delivery events, replies, opt-outs and payments to the ledger.",
        ),
        operator_action.to_deployment(
            name="operator-action",
            tags=["dunning", "operator"],
            description="One audited operator action, started from this deployment's form.",
        ),
    ]


def apply_settings(env: dict[str, Any]) -> dict[str, str]:
    """The environment's ``[env]`` settings now in force: each is set in ``os.environ``
    unless the variable is already set (the operator's own environment wins), and the
    settings root is read again from it (``dunning.config.reload_settings``)."""
    from dunning.config import reload_settings

    for name, value in env.get("env", {}).items():
        os.environ.setdefault(name, str(value))
    reload_settings()
    return {name: os.environ[name] for name in env.get("env", {})}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", default="local", help="environment settings file to use")
    args = parser.parse_args(argv)
    from prefect import serve

    env = load_environment(args.env)
    apply_settings(env)
    serve(*deployments(env))


if __name__ == "__main__":
    main()
