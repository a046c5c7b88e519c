"""``dunning schedule resume|pause``: turn the sending schedule on (and off) deliberately."""

from __future__ import annotations

import httpx
import typer
from prefect.settings import PREFECT_API_URL

from dunning.cli.app import app, console, emit_json, fail
from dunning.errors import DunningError

schedule_app = typer.Typer(
    help="Turn the payment-reminders schedule on or off (it ships paused).", no_args_is_help=True
)
app.add_typer(schedule_app, name="schedule")

_DEPLOYMENT = typer.Option(
    None,
    "--deployment",
    help="A flow/deployment whose schedules to change (repeatable); default "
    "payment-reminders/payment-reminders.",
)


def _change(deployments: list[str] | None, active: bool, json_mode: bool) -> None:
    from dunning.schedules import SENDING_DEPLOYMENTS, set_active

    api = PREFECT_API_URL.value()
    if not api:
        fail(
            "PREFECT_API_URL is not set: point it at the Prefect server you deployed to "
            "(e.g. http://127.0.0.1:4200/api)"
        )
    try:
        changes = set_active(tuple(deployments or SENDING_DEPLOYMENTS), active)
    except DunningError as exc:
        fail(str(exc))
    except httpx.HTTPStatusError as exc:
        fail(f"the Prefect API at {api} refused the request ({exc.response.status_code})")
    except (httpx.HTTPError, OSError) as exc:
        fail(f"cannot reach the Prefect API at {api} ({type(exc).__name__}); is it running?")
    if json_mode:
        emit_json({"schedules": [c.to_json() for c in changes]})
        return
    for c in changes:
        if not active:
            was = "paused" if not c.was_active else "paused now"
            console.print(
                f"{c.deployment}: {c.schedule}: {was}; no runs start from it", highlight=False
            )
            continue
        mode = "plans (dry run: sends nothing)" if c.parameters.get("dry_run") else "sends"
        settings = ", ".join(f"{k}={v}" for k, v in sorted(c.parameters.items())) or "defaults"
        console.print(
            f"{c.deployment}: {c.schedule}: {'active now' if not c.was_active else 'was active'}."
            f"\n  Each run {mode} the reminders due at that moment to every customer whose "
            f"send window is open (parameters: {settings}); a worker of the pool picks it up."
            f"\n  next runs: {', '.join(t.strftime('%Y-%m-%d %H:%MZ') for t in c.next_runs)}"
            f"\n  undo: dunning schedule pause",
            highlight=False,
        )


@schedule_app.command("resume")
def resume(
    deployment: list[str] = _DEPLOYMENT,
    json_mode: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Resume the sending schedule(s) and say what will now happen every hour."""
    _change(deployment, True, json_mode)


@schedule_app.command("pause")
def pause(
    deployment: list[str] = _DEPLOYMENT,
    json_mode: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Pause the sending schedule(s): no runs start from them until resumed."""
    _change(deployment, False, json_mode)
