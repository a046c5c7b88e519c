"""The rank of a stage (which reminder words a consolidated message) comes from the loaded
policy's ladder: the default ladder keeps its order, a custom ladder's stages rank by their
place in it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from dunning.policy import load_policy
from dunning.render import lead_reminder, stage_rank
from tests.render_support import reminder

CUSTOM_LADDER = """
[ladder]
stages = [
  { name = "heads_up", offset_days = -2, channels = ["email"], tone = "friendly" },
  { name = "nudge", offset_days = 3, channels = ["email"], tone = "neutral" },
  { name = "last_call", offset_days = 10, channels = ["email"], tone = "firm" },
]
"""


def _order(policy: object | None, stages: list[str]) -> list[str]:
    return sorted(stages, key=lambda s: stage_rank(s, policy))  # type: ignore[arg-type]


def test_the_default_ladder_keeps_its_order() -> None:
    stages = ["final_notice", "overdue_2", "promise_broken", "overdue_1"]
    stages += ["payment_failed", "due", "pre_due"]
    expected = ["pre_due", "due", "payment_failed", "overdue_1", "promise_broken"]
    expected += ["overdue_2", "final_notice"]
    assert _order(None, stages) == expected
    assert _order(load_policy(), stages) == expected
    # Repeats rank after their stage; a stage the policy lacks ranks like the first overdue rung.
    assert (
        stage_rank("final_notice_r3") > stage_rank("final_notice_r2") > stage_rank("final_notice")
    )
    assert stage_rank("no_such_stage")[0] == stage_rank("overdue_1")[0]


def test_a_custom_ladders_stages_rank_by_their_place(tmp_path: Path) -> None:
    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM_LADDER)
    policy = load_policy(path)
    stages = ["last_call", "promise_broken", "nudge", "payment_failed", "heads_up"]
    assert _order(policy, stages) == [
        "heads_up",
        "payment_failed",
        "nudge",
        "promise_broken",
        "last_call",
    ]
    # The most advanced stage words the message: last_call, not the older invoice's nudge
    # (with the hard-coded default ranks both were unknown and ranked alike).
    due = dt.date(2026, 3, 1)
    late = reminder(reminder_id=1, stage="nudge", days_overdue=30, due_on=due)
    last = reminder(reminder_id=2, stage="last_call", days_overdue=12, due_on=due)
    assert lead_reminder([late, last], policy) is last
    assert lead_reminder([late, last]) is late  # the default policy knows neither stage


def test_delivery_groups_a_customers_message_by_the_runs_ladder(tmp_path: Path) -> None:
    """The run's policy reaches delivery: customer_messages (what deliver_batch claims and
    composes as one message) leads with the custom ladder's last_call, as the run planned."""
    from dunning.delivery import customer_messages

    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM_LADDER)
    policy = load_policy(path)
    due = dt.date(2026, 3, 1)
    late = reminder(reminder_id=1, stage="nudge", days_overdue=30, due_on=due)
    last = reminder(reminder_id=2, stage="last_call", days_overdue=12, due_on=due)
    assert [m[0] for m in customer_messages([late, last], policy)] == [last]
    assert [m[0] for m in customer_messages([late, last])] == [late]
