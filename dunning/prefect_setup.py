"""Prepare a Prefect server for dunning: the "dunning" process work pool, the operator's
notification block, the run guards and the alert automations. Every step is idempotent.

The automation specs are pure (:mod:`dunning.alerts`); this module talks to the Prefect API.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
from prefect.automations import AutomationCore
from prefect.client.orchestration import PrefectClient, get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from dunning.alerts import (  # noqa: F401  (re-exported names the CLI and tests use)
    FAILURE_RATE_AUTOMATION,
    FAILURE_RATE_EVENT,
    REMINDER_FLOW,
    RUN_FAILED_AUTOMATION,
    alert_specs,
    guard_specs,
)
from dunning.config import AlertSettings, get_settings
from dunning.errors import ConfigError

WORK_POOL = "dunning"
OPERATOR_BLOCK = "dunning-operator"


def automation_specs(
    block_document_id: UUID, settings: AlertSettings | None = None
) -> list[AutomationCore]:
    """The run guards and the operator alerts (notifying through ``block_document_id``)."""
    settings = settings or get_settings().alerts
    return [*guard_specs(settings), *alert_specs(block_document_id, settings)]


async def ensure_work_pool(
    client: PrefectClient, name: str = WORK_POOL, pool_type: str = "process"
) -> str:
    """``created`` or ``exists``: the work pool ``name`` the deployments run on, of
    ``pool_type`` (a worker type installed here: ``process``, or e.g. ``docker`` with
    prefect-docker). Raises ConfigError naming the type when no installed worker has it."""
    try:
        await client.read_work_pool(name)
        return "exists"
    except ObjectNotFound:
        pass
    from prefect.workers.base import BaseWorker

    worker = BaseWorker.get_worker_class_from_type(pool_type)
    if worker is None:
        raise ConfigError(
            f"work pool type {pool_type!r} has no worker installed here: use --pool-type "
            "process, or install the integration that provides it (e.g. prefect-docker, "
            "prefect-kubernetes) first"
        )
    await client.create_work_pool(
        WorkPoolCreate(
            name=name,
            type=pool_type,
            description=f"Runs the dunning flows (prefect worker start --pool {name}).",
            base_job_template=worker.get_default_base_job_template(),
        )
    )
    return "created"


def _block_ref(ref: str) -> tuple[str, str]:
    """(block type slug, block name) of ``ref`` written as <block-type-slug>/<name>."""
    slug, _, name = ref.partition("/")
    if not slug or not name:
        raise ConfigError(
            f"DUNNING_ALERT_BLOCK={ref!r} is not <block-type-slug>/<name>; "
            "e.g. slack-webhook/ops (see `prefect block ls`)"
        )
    return slug, name


def check_alert_target(settings: AlertSettings) -> None:
    """Nothing; raises ConfigError when neither a usable block nor a webhook URL is set."""
    if settings.block:
        _block_ref(settings.block)
        return
    if not settings.webhook_url:
        raise ConfigError(
            "no operator notification configured: set DUNNING_ALERT_BLOCK=<block-type-slug>/"
            "<name> of a Prefect notification block, or DUNNING_ALERT_WEBHOOK_URL=https://... "
            f"to create the '{OPERATOR_BLOCK}' webhook block"
        )
    if not settings.webhook_url.startswith(("http://", "https://")):
        raise ConfigError("DUNNING_ALERT_WEBHOOK_URL must start with http:// or https://")


async def ensure_notification_block(
    client: PrefectClient, settings: AlertSettings
) -> tuple[UUID, str, str]:
    """(block document id, block reference, ``configured`` | ``saved``) to notify through."""
    check_alert_target(settings)
    if settings.block:
        slug, name = _block_ref(settings.block)
        try:
            doc = await client.read_block_document_by_name(name, slug, include_secrets=False)
        except ObjectNotFound:
            raise ConfigError(
                f"DUNNING_ALERT_BLOCK={settings.block!r}: no such block on the Prefect server; "
                "create it in the UI (Blocks) or fix the name"
            ) from None
        return doc.id, settings.block, "configured"
    assert settings.webhook_url is not None  # check_alert_target guarantees it
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    # Why the URL is a secret: webhook URLs (Slack, Teams) carry their token in the path.
    block = CustomWebhookNotificationBlock(
        name=OPERATOR_BLOCK,
        url="{{webhook_url}}",
        headers=None,
        cookies=None,
        json_data={"subject": "{{subject}}", "body": "{{body}}", "source": "{{name}}"},
        secrets={"webhook_url": settings.webhook_url},  # type: ignore[arg-type]
    )
    block_id = await block.asave(OPERATOR_BLOCK, overwrite=True, client=client)
    return block_id, f"custom-webhook/{OPERATOR_BLOCK}", "saved"


async def ensure_automation(client: PrefectClient, spec: AutomationCore) -> tuple[UUID, str]:
    """(automation id, ``created`` | ``updated``): ``spec`` stored under its name."""
    existing = await client.read_automations_by_name(spec.name)
    if existing:
        await client.update_automation(existing[0].id, spec)
        return existing[0].id, "updated"
    return await client.create_automation(spec), "created"


async def ensure_rate_limits(client: Any, rates: dict[str, float]) -> list[dict[str, Any]]:
    """The provider rate limits as Prefect global concurrency limits, created or updated.

    Slots decay at the paced rate and the capacity is one block (one second of sends,
    ``dunning.channels.ratelimit.block_size``): a process takes a block with one API call and
    spaces its sends 1/rate apart; the next block is handed out once this one has decayed,
    so no second holds more than the provider's limit across every worker of the server.
    """
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectNotFound

    from dunning.channels.ratelimit import block_size, global_limit_name, paced_rate

    out = []
    for kind, rate in sorted(rates.items()):
        if rate <= 0:
            continue
        name = global_limit_name(kind)
        decay = paced_rate(rate)
        block = block_size(decay)
        try:
            current = await client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            await client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(
                    name=name, limit=block, active=True, slot_decay_per_second=decay
                )
            )
            status = "created"
        else:
            same = (
                current.limit == block and current.slot_decay_per_second == decay and current.active
            )
            if not same:
                await client.update_global_concurrency_limit(
                    name,
                    GlobalConcurrencyLimitUpdate(
                        limit=block, active=True, slot_decay_per_second=decay
                    ),
                )
            status = "unchanged" if same else "updated"
        out.append({"name": name, "messages_per_second": rate, "status": status})
    return out


async def setup_prefect(
    settings: AlertSettings | None = None,
    rates: dict[str, float] | None = None,
    *,
    alerts: bool = True,
    pool: str = WORK_POOL,
    pool_type: str = "process",
) -> dict[str, Any]:
    """What was created or updated: the work pool ``pool`` (of ``pool_type``), the
    notification block, the automations and the provider rate limits (from
    DUNNING_EMAIL_RATE_LIMIT / DUNNING_SMS_RATE_LIMIT).

    ``alerts=False`` (a local trial) skips the notification block and the alert automations
    that notify through it, so no notification target is needed; the guards that act
    without notifying (crashing zombie runs) are still made. Raises ConfigError when alerts
    are wanted and no notification target is configured (before touching anything).
    """
    settings = settings or get_settings().alerts
    if alerts:
        check_alert_target(settings)
    if rates is None:
        channel = get_settings().channels
        rates = {"email": channel.email_rate_limit, "sms": channel.sms_rate_limit}
    block: dict[str, Any] | None = None
    async with get_client() as client:
        limits = await ensure_rate_limits(client, rates)
        pool_status = await ensure_work_pool(client, pool, pool_type)
        if alerts:
            block_id, block_ref, block_status = await ensure_notification_block(client, settings)
            specs = automation_specs(block_id, settings)
            block = {"ref": block_ref, "id": str(block_id), "status": block_status}
        else:
            specs = guard_specs(settings)
        automations = []
        for spec in specs:
            auto_id, status = await ensure_automation(client, spec)
            automations.append({"name": spec.name, "id": str(auto_id), "status": status})
    return {
        "work_pool": {"name": pool, "type": pool_type, "status": pool_status},
        "block": block,
        "automations": automations,
        "rate_limits": limits,
        "failure_rate_threshold": settings.failure_rate,
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path, port: int, ui: bool = False) -> dict[str, str]:
    """The environment for `prefect server start` and its clients: PREFECT_HOME under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    api = f"http://127.0.0.1:{port}/api"
    env.update(
        {
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": api,
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_UI_API_URL": api,
            "PREFECT_UI_ENABLED": "true" if ui else "false",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
    )
    return env


def start_server(
    home: Path, *, ui: bool, log_mode: str = "wb"
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start `prefect server start` on a free 127.0.0.1 port with its database under ``home``.

    Returns the process (its own session, so its group can be killed) and the client
    environment (``PREFECT_API_URL`` and the rest of :func:`server_env`). Output goes to
    ``home/server.log`` opened with ``log_mode`` ("wb" truncates, "ab" appends). The caller
    waits for health and stops it.
    """
    port = free_port()
    env = server_env(home, port, ui)
    with (home / "server.log").open(log_mode) as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("prefect")), "server", "start"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, env


@contextlib.contextmanager
def local_server(
    home: Path, *, ui: bool = False, timeout: float = 120.0
) -> Iterator[dict[str, str]]:
    """The client environment of a real `prefect server start` (SQLite under ``home``).

    The server is stopped (and its process group killed) when the block exits.
    """
    home.mkdir(parents=True, exist_ok=True)
    proc, env = start_server(home, ui=ui, log_mode="wb")
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited early; see {home / 'server.log'}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server not healthy after {timeout}s")
            time.sleep(0.5)
        yield env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
