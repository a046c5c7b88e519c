"""`dunning setup-prefect --no-alerts --pool NAME --pool-type TYPE` on a real Prefect server."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

import dunning.cli.prefect_setup  # noqa: F401  (registers the command)
from dunning.cli.app import app
from dunning.config import reload_settings

pytestmark = pytest.mark.prefect


async def _blocks() -> list[str]:
    async with get_client() as client:
        return [b.name for b in await client.read_block_documents() if b.name]


async def _pool_and_blocks(name: str) -> tuple[object, list[str]]:
    async with get_client() as client:
        pool = await client.read_work_pool(name)
        blocks = await client.read_block_documents()
    return pool, [b.name for b in blocks if b.name]


def test_a_local_trial_needs_no_alert_target_and_names_its_pool(
    prefect_server, monkeypatch: pytest.MonkeyPatch
):
    for name in ("DUNNING_ALERT_WEBHOOK_URL", "DUNNING_ALERT_BLOCK"):
        monkeypatch.delenv(name, raising=False)
        reload_settings()
    refused = CliRunner().invoke(app, ["setup-prefect", "--json"])
    assert refused.exit_code == 1  # alerts are on by default and need a target

    pool = f"trial-{uuid.uuid4().hex[:6]}"
    # The session's server is shared with the alert tests, which create blocks of their own:
    # what counts is that --no-alerts creates none.
    blocks_before = asyncio.run(_blocks())
    result = CliRunner().invoke(
        app, ["setup-prefect", "--no-alerts", "--pool", pool, "--pool-type", "process", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["work_pool"] == {"name": pool, "type": "process", "status": "created"}
    assert out["block"] is None
    assert all("run failed" not in a["name"] for a in out["automations"])
    made, blocks = asyncio.run(_pool_and_blocks(pool))
    assert made.type == "process"  # type: ignore[attr-defined]
    assert sorted(blocks) == sorted(blocks_before)

    text = CliRunner().invoke(app, ["setup-prefect", "--no-alerts", "--pool", pool])
    assert text.exit_code == 0
    assert f"work pool {pool} (process): exists" in text.output
    assert "alerts: off (--no-alerts)" in text.output
    flat = " ".join(text.output.split())  # the console wraps long lines
    assert f"deploy --all --pool {pool} && prefect worker start --pool {pool}" in flat


def test_an_unknown_pool_type_is_one_clear_error(prefect_server):
    result = CliRunner().invoke(
        app, ["setup-prefect", "--no-alerts", "--pool", "k8s", "--pool-type", "kubernetes"]
    )
    assert result.exit_code == 1
    assert "work pool type 'kubernetes' has no worker installed here" in result.output
    assert "Traceback" not in result.output
