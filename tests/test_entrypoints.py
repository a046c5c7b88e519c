"""Flows are loaded by entrypoint string: prefect.yaml's file form in a checkout, the module
form in an installed wheel; both give the same flow object."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint

from dunning import entrypoints
from dunning.entrypoints import PAYMENT_REMINDERS, load_flow, module_entrypoint

ROOT = Path(__file__).resolve().parents[1]


def _prefect_yaml_entrypoints() -> list[str]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    return sorted({d["entrypoint"] for d in spec["deployments"]})


def test_prefect_yaml_names_flows_only_by_their_entrypoint_files() -> None:
    assert "flows/payment_reminders.py:payment_reminders" in _prefect_yaml_entrypoints()


@pytest.mark.parametrize("entrypoint", _prefect_yaml_entrypoints())
def test_every_prefect_yaml_entrypoint_loads_the_flow_of_its_module_form(entrypoint: str) -> None:
    path, _, function = entrypoint.partition(":")
    from_file = load_flow_from_entrypoint(f"{ROOT / path}:{function}", use_placeholder_flow=False)
    from_module = load_flow_from_entrypoint(
        module_entrypoint(entrypoint), use_placeholder_flow=False
    )
    assert from_file is from_module


def test_in_a_checkout_the_cli_loads_prefect_yamls_entrypoint() -> None:
    from dunning.flows.payment_reminders import payment_reminders

    assert entrypoints.entrypoint(*PAYMENT_REMINDERS) == (
        f"{ROOT / 'flows' / 'payment_reminders.py'}:payment_reminders"
    )
    assert load_flow(*PAYMENT_REMINDERS) is payment_reminders


def test_outside_a_checkout_the_module_form_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.flows.payment_reminders import payment_reminders

    monkeypatch.setattr(entrypoints, "CHECKOUT", tmp_path)  # no prefect.yaml, no flows/ there
    assert entrypoints.entrypoint(*PAYMENT_REMINDERS) == (
        "dunning.flows.payment_reminders:payment_reminders"
    )
    assert load_flow(*PAYMENT_REMINDERS) is payment_reminders


@pytest.mark.parametrize(
    "bad", ["payment_reminders.py:f", "flows/a/b.py:f", "flows/x.txt:f", "flows/x.py", "x:y"]
)
def test_an_entrypoint_of_another_shape_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="flows/<module>.py:<flow>"):
        module_entrypoint(bad)
