"""The reminder flow's parameter form: schema, validation in pydantic and on the server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from dunning.params import RunParameters
from flows.payment_reminders import payment_reminders

ROOT = Path(__file__).resolve().parents[1]
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"batch_size": 0}, "batch_size"),
    ({"channels": ["fax"]}, "channels"),
    ({"stages": ["overdue_9"]}, "stages"),
    ({"concurrency": 65}, "concurrency"),
    ({"max_messages": -1}, "max_messages"),
    ({"batchsize": 10}, "batchsize"),
]


def _form() -> dict[str, Any]:
    schema = parameter_schema(payment_reminders.fn).model_dump()
    return schema["definitions"]


def test_every_field_of_the_form_has_a_title_and_a_description():
    fields = _form()["RunParameters"]["properties"]
    assert {"as_of", "dry_run", "channels", "segments", "stages", "invoice_numbers",
            "batch_size", "max_messages", "policy_path"} <= set(fields)
    assert all(f.get("description") and f.get("title") for f in fields.values())


def test_channels_and_stages_are_enums_and_numbers_have_bounds():
    defs = _form()
    assert defs["ChannelName"]["enum"] == ["email", "sms", "voice"]
    assert {"pre_due", "due", "overdue_1", "overdue_2", "final_notice"} <= set(
        defs["StageName"]["enum"])
    fields = defs["RunParameters"]["properties"]
    assert fields["channels"]["anyOf"][0]["items"] == {"$ref": "#/definitions/ChannelName"}
    assert fields["stages"]["anyOf"][0]["items"] == {"$ref": "#/definitions/StageName"}
    batch = fields["batch_size"]["anyOf"][0]  # empty = one task per invoice for small runs
    assert batch["minimum"] == 1 and batch["maximum"] == 10_000
    assert fields["as_of"]["anyOf"][0]["format"] == "date-time"
    # unknown keys are refused rather than silently ignored
    assert defs["RunParameters"]["additionalProperties"] is False


@pytest.mark.parametrize(("values", "field"), INVALID)
def test_invalid_values_are_refused_naming_the_field(values: dict[str, Any], field: str):
    with pytest.raises(ValidationError) as err:
        RunParameters(**values)
    assert field in str(err.value)


def test_a_missing_policy_file_is_refused(tmp_path: Path):
    with pytest.raises(ValidationError, match="does not exist"):
        RunParameters(policy_path=tmp_path / "nope.toml")


def test_the_parameters_in_prefect_yaml_are_valid_forms():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    reminders = [d for d in spec["deployments"]
                 if d["entrypoint"].endswith(":payment_reminders")]
    assert {d["name"] for d in reminders} == {
        "payment-reminders", "dry-run", "payment-reminders-sharded", "payment-reminders-shard"}
    for dep in reminders:
        RunParameters(**dep["parameters"]["params"])
    assert next(d for d in reminders if d["name"] == "dry-run")["parameters"]["params"][
        "dry_run"] is True


async def _create_run(deployment_id: Any, params: dict[str, Any]) -> Any:
    async with get_client() as client:
        return await client.create_flow_run_from_deployment(
            deployment_id, parameters={"params": params})


async def _delete_run(run_id: Any) -> None:
    async with get_client() as client:
        await client.delete_flow_run(run_id)


@pytest.mark.prefect
def test_the_server_refuses_a_run_with_invalid_parameters(prefect_server):
    deployment = payment_reminders.to_deployment(name="params-form-test")
    deployment_id = deployment.apply()  # type: ignore[union-attr]

    accepted = asyncio.run(_create_run(deployment_id, {"batch_size": 50, "channels": ["sms"]}))
    assert accepted.parameters == {"params": {"batch_size": 50, "channels": ["sms"]}}
    asyncio.run(_delete_run(accepted.id))  # nothing should ever pick it up

    for values, field in INVALID[:3]:
        with pytest.raises(PrefectHTTPStatusError) as err:
            asyncio.run(_create_run(deployment_id, values))
        assert err.value.response.status_code == 409
        assert "Validation failed" in err.value.response.text
        assert field in err.value.response.text or str(list(values.values())[0]) in (
            err.value.response.text)
