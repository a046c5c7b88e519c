"""``dunning setup-prefect``: the work pool, notification block and automations on the server."""

from __future__ import annotations

import asyncio

import httpx
import typer
from prefect.settings import PREFECT_API_URL

from dunning.cli.app import app, console, emit_json, fail
from dunning.errors import DunningError
from dunning.prefect_setup import WORK_POOL, setup_prefect


@app.command("setup-prefect")
def setup_prefect_command(
    json_mode: bool = typer.Option(False, "--json", help="Print one JSON object with the result."),
    no_alerts: bool = typer.Option(
        False,
        "--no-alerts",
        help="A local trial: no notification block and no alert "
        "automations (no DUNNING_ALERT_* needed); the zombie-run guard is still made.",
    ),
    pool: str = typer.Option(WORK_POOL, "--pool", help="Name of the work pool to create."),
    pool_type: str = typer.Option(
        "process", "--pool-type", help="Work pool type (a worker type installed here)."
    ),
) -> None:
    """Create (or update) the "dunning" work pool and the operator alert automations.

    Alerts go to the Prefect notification block named by DUNNING_ALERT_BLOCK
    (<block-type-slug>/<name>), else to a "dunning-operator" webhook block posting to
    DUNNING_ALERT_WEBHOOK_URL. Safe to run again: nothing is duplicated.
    """
    api = PREFECT_API_URL.value() or "the ephemeral local Prefect API"
    try:
        result = asyncio.run(setup_prefect(alerts=not no_alerts, pool=pool, pool_type=pool_type))
    except DunningError as exc:
        fail(str(exc))
    except httpx.HTTPStatusError as exc:
        fail(
            f"the Prefect API at {api} refused the request "
            f"({exc.response.status_code}); check the server version and PREFECT_API_KEY"
        )
    except (httpx.HTTPError, OSError) as exc:
        fail(
            f"cannot reach the Prefect API at {api} ({type(exc).__name__}); start "
            "`prefect server start` or set PREFECT_API_URL to a running server"
        )
    if json_mode:
        emit_json(result)
        return
    made = result["work_pool"]
    console.print(f"work pool {made['name']} ({made['type']}): {made['status']}", highlight=False)
    block = result["block"]
    if block is None:
        console.print(
            "alerts: off (--no-alerts); nobody is notified of a failed run", highlight=False
        )
    else:
        console.print(f"notification block {block['ref']}: {block['status']}", highlight=False)
    for auto in result["automations"]:
        console.print(f"automation '{auto['name']}': {auto['status']}", highlight=False)
    # prefect.yaml names the pool "dunning"; --pool on deploy sends every deployment elsewhere.
    deploy = "prefect --no-prompt deploy --all" + (f" --pool {pool}" if pool != WORK_POOL else "")
    console.print(f"next: {deploy} && prefect worker start --pool {pool}", highlight=False)
