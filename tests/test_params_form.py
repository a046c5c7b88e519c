"""The reminder flows' parameter form: flat parameters, their schema, validation in pydantic
and on the server."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.exceptions import ParameterTypeError, PrefectHTTPStatusError
from prefect.utilities.callables import parameter_schema
from pydantic import ValidationError

from dunning.flows.dry_run import reminders_dry_run
from dunning.flows.payment_reminders import payment_reminders
from dunning.params import RunParameters

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {
    "as_of",
    "dry_run",
    "channels",
    "segments",
    "stages",
    "invoice_numbers",
    "batch_size",
    "max_tasks",
    "concurrency",
    "max_messages",
    "policy_path",
    "shards",
    "shard",
    "shard_deployment",
}
INVALID: list[tuple[dict[str, Any], str]] = [
    ({"batch_size": 0}, "batch_size"),
    ({"channels": ["fax"]}, "channels"),
    ({"as_of": "26.11.2026"}, "as_of"),
    ({"as_of": "2026-11-26T15"}, "as_of"),
    ({"concurrency": 65}, "concurrency"),
    ({"max_messages": -1}, "max_messages"),
]
#: Refused when the run starts (RunParameters), not by the server's schema: stage names are
#: the run's policy's.
INVALID_AT_START: list[tuple[dict[str, Any], str]] = [({"stages": ["overdue_9"]}, "stages")]


def _schema(fn: Any = payment_reminders) -> dict[str, Any]:
    return parameter_schema(fn.fn).model_dump_for_openapi()


def test_the_flow_takes_every_run_parameter_top_level_with_title_and_description():
    props = _schema()["properties"]
    assert set(props) == FIELDS == set(RunParameters.model_fields)
    assert all(p.get("description") and p.get("title") for p in props.values()), props
    assert "params" not in props


def test_list_fields_show_their_allowed_values_without_a_none_toggle():
    schema = _schema()
    props, defs = schema["properties"], schema["definitions"]
    assert defs["ChannelName"]["enum"] == ["email", "sms", "voice"]
    # an array with an empty default: no anyOf with null to switch off first
    for name in ("channels", "stages"):
        assert props[name]["type"] == "array" and "anyOf" not in props[name]
        assert props[name]["default"] == []
    assert props["channels"]["items"] == {"$ref": "#/definitions/ChannelName"}
    # Stage names are the run's policy's (a custom ladder has its own): checked at run start.
    assert props["stages"]["items"] == {"type": "string"}
    batch = props["batch_size"]["anyOf"][0]  # empty = one task per invoice for small runs
    assert batch["minimum"] == 1 and batch["maximum"] == 10_000


def test_as_of_is_a_date_time_with_a_pattern_the_server_can_enforce():
    as_of = _schema()["properties"]["as_of"]
    assert as_of["anyOf"][0] == {"type": "string", "format": "date-time"}
    import re

    pattern = re.compile(as_of["pattern"])
    for good in (
        "2026-11-30T15:00:00Z",
        "2026-11-30T16:00:00+01:00",
        "2026-11-30",
        "2026-11-30T15:00",
        "2026-11-30 15:00:00.123456+00:00",
    ):
        assert pattern.match(good), good
    for bad in ("26.11.2026", "2026-11-30T15", "1700000000", "tomorrow", "2026-11-30T15:00:00ZZ"):
        assert not pattern.match(bad), bad


@pytest.mark.parametrize(("values", "field"), INVALID + INVALID_AT_START)
def test_invalid_values_are_refused_naming_the_field(values: dict[str, Any], field: str):
    with pytest.raises(ValidationError) as err:
        RunParameters(**values)
    assert field in str(err.value)


def test_an_unknown_field_is_refused():
    with pytest.raises(ValidationError, match="batchsize"):
        RunParameters(batchsize=10)  # type: ignore[call-arg]


CUSTOM_LADDER = """
[ladder]
stages = [
  { name = "heads_up", offset_days = -2, channels = ["email"], tone = "friendly" },
  { name = "nudge", offset_days = 3, channels = ["email"], tone = "neutral" },
  { name = "last_call", offset_days = 10, channels = ["email"], tone = "firm" },
]
"""


def test_stage_filters_are_the_loaded_policys_stages(tmp_path: Path):
    """A custom ladder's stage can be selected; the default ladder's stage names are then
    refused, with the policy's own names in the message."""
    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM_LADDER)
    params = RunParameters(stages=["last_call", "payment_failed"], policy_path=path)
    assert params.stages == ("last_call", "payment_failed")
    with pytest.raises(ValidationError, match=r"stages \['overdue_1'\].*'last_call'"):
        RunParameters(stages=["overdue_1"], policy_path=path)
    with pytest.raises(ValidationError, match="last_call"):
        RunParameters(stages=["last_call"])  # not a stage of the default policy


def test_a_custom_ladders_stage_selects_its_plan_lines(tmp_path: Path):
    """The run's stage filter keeps the custom stage's lines (repeats count as it)."""
    from dunning.policy import load_policy, plan
    from dunning.tasks.plan import select_lines
    from tests.policy_support import AS_OF, portfolio

    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM_LADDER)
    policy = load_policy(path)
    lines = plan(portfolio(days_overdue=12), AS_OF, policy)
    assert set(lines["stage"].astype(str)) == {"nudge"}  # the first overdue rung goes first
    kept = select_lines(
        lines, channels=None, segments=None, stages=["nudge"], max_messages=None, as_of=AS_OF
    )
    assert len(kept) == len(lines) > 0
    none = select_lines(
        lines, channels=None, segments=None, stages=["last_call"], max_messages=None, as_of=AS_OF
    )
    assert none.empty


def test_a_missing_policy_file_is_refused(tmp_path: Path):
    with pytest.raises(ValidationError, match="does not exist"):
        RunParameters(policy_path=tmp_path / "nope.toml")


@pytest.mark.prefect
def test_a_bad_as_of_fails_the_flow_before_it_starts(prefect_server):
    with pytest.raises(ParameterTypeError, match="as_of"):
        payment_reminders(as_of="26.11.2026")  # type: ignore[arg-type]


def test_the_dry_run_flow_has_no_parameter_that_could_make_it_send():
    props = _schema(reminders_dry_run)["properties"]
    assert "dry_run" not in props and "params" not in props
    assert not {"shards", "shard", "shard_deployment", "batch_size", "concurrency"} & set(props)
    assert set(props) <= FIELDS
    assert all(p.get("description") for p in props.values())


def test_prefect_yaml_parameters_are_flat_valid_and_sending_schedules_ship_paused():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    deployments = {d["name"]: d for d in spec["deployments"]}
    reminders = {
        n: d for n, d in deployments.items() if d["entrypoint"].endswith(":payment_reminders")
    }
    assert set(reminders) == {
        "payment-reminders",
        "payment-reminders-sharded",
        "payment-reminders-shard",
    }
    for dep in reminders.values():
        RunParameters(**dep["parameters"])  # flat and valid, no nested params object
        for schedule in dep["schedules"]:
            assert schedule.get("active") is False, dep["name"]
    assert reminders["payment-reminders"]["schedules"], "the hourly schedule is there, paused"
    dry = deployments["dry-run"]
    assert dry["entrypoint"] == "flows/dry_run.py:reminders_dry_run"
    assert "dry_run" not in dry["parameters"]


async def _create_run(deployment_id: Any, parameters: dict[str, Any]) -> Any:
    async with get_client() as client:
        return await client.create_flow_run_from_deployment(deployment_id, parameters=parameters)


async def _delete_run(run_id: Any) -> None:
    async with get_client() as client:
        await client.delete_flow_run(run_id)


@pytest.mark.prefect
def test_the_server_refuses_a_run_with_invalid_parameters(prefect_server):
    deployment = payment_reminders.to_deployment(
        name="params-form-test", parameters={"dry_run": True, "concurrency": 8}
    )
    deployment_id = deployment.apply()  # type: ignore[union-attr]

    accepted = asyncio.run(
        _create_run(
            deployment_id, {"batch_size": 50, "channels": ["sms"], "as_of": "2026-11-30T15:00:00Z"}
        )
    )
    # a partial override keeps every other default of the deployment
    assert accepted.parameters == {
        "dry_run": True,
        "concurrency": 8,
        "batch_size": 50,
        "channels": ["sms"],
        "as_of": "2026-11-30T15:00:00Z",
    }
    asyncio.run(_delete_run(accepted.id))  # nothing should ever pick it up

    for values, field in INVALID:
        with pytest.raises(PrefectHTTPStatusError) as err:
            asyncio.run(_create_run(deployment_id, values))
        assert err.value.response.status_code == 409, values
        assert "Validation failed" in err.value.response.text
        assert field in err.value.response.text


@pytest.mark.prefect
def test_flow_run_names_carry_the_as_of(prefect_server, db_url):
    from prefect.client.orchestration import get_client as client_of

    state = reminders_dry_run(
        as_of=dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC), return_state=True
    )
    with client_of(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.name == "dry run 2026-11-30T15:00Z"
