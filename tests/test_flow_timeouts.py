"""Every deployed flow has a timeout, so a hung run cannot hold its concurrency slot for ever;
each is set per flow by DUNNING_FLOW_TIMEOUT_<FLOW> in the flow run's own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dunning.config import FlowTimeouts, reload_settings
from dunning.errors import ConfigError
from dunning.timeouts import flow_timeout

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import importlib, sys
module, name = sys.argv[1].split(":")
print(getattr(importlib.import_module(module.replace("/", ".").removesuffix(".py")), name)
      .timeout_seconds)
"""


def _entrypoints() -> set[str]:
    with (ROOT / "prefect.yaml").open() as fh:
        return {d["entrypoint"] for d in yaml.safe_load(fh)["deployments"]}


def _timeout_in_a_fresh_process(entrypoint: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, entrypoint],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return int(float(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("entrypoint", sorted(_entrypoints()))
def test_every_deployed_flow_has_the_timeout_its_setting_gives(entrypoint: str) -> None:
    flow_key = entrypoint.split(":")[1]
    setting = f"DUNNING_FLOW_TIMEOUT_{flow_key.upper()}"
    assert flow_key in FlowTimeouts.model_fields, f"{entrypoint} has no timeout setting"
    default = FlowTimeouts.model_fields[flow_key].default
    assert _timeout_in_a_fresh_process(entrypoint, {}) == default
    assert _timeout_in_a_fresh_process(entrypoint, {setting: "777"}) == 777


def test_a_bad_timeout_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_FLOW_TIMEOUT_TRACK_RESPONSES", "5")
    reload_settings()
    with pytest.raises(ConfigError, match="DUNNING_FLOW_TIMEOUT_TRACK_RESPONSES='5'"):
        flow_timeout("track_responses")
