"""The segmentation snapshot (customer_segments) on real SQLite and PostgreSQL: it round-trips
to exactly what segment_frame computes, a fresh snapshot plans what segmenting now plans, and
customers without a usable row are segmented on the fly."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from dunning import segment_snapshot
from dunning.db.models import CustomerSegment
from dunning.devtools.seed import seed_portfolio
from dunning.policy import load_policy, plan, segment_frame
from dunning.portfolio import load_portfolio
from dunning.segment_snapshot import (
    NEW,
    policy_fingerprint,
    read_snapshot,
    segments_for,
    write_snapshot,
)
from dunning.segments.model import Condition, SegmentRule

AS_OF = dt.datetime(2026, 11, 24, 14, 0, tzinfo=dt.UTC)


@pytest.fixture
def seeded(engine: Engine):
    seed_portfolio(engine, 60, 400, 11, AS_OF.date())
    return load_portfolio(engine)


def test_the_snapshot_round_trips_to_segment_frame(engine, seeded, monkeypatch):
    policy = load_policy()
    frame = segment_frame(seeded, AS_OF, policy)
    # Every kind of value is there: NaN features (nothing judged) and several segments.
    assert frame["on_time_share"].isna().any() and frame["on_time_share"].notna().any()
    assert frame["segment"].nunique() >= 2
    written = write_snapshot(engine, frame, AS_OF, policy)
    assert written.customers == len(frame)
    assert set(written.movement["from_segment"]) == {NEW}
    back = read_snapshot(engine, policy=policy)
    pd.testing.assert_frame_equal(back.loc[frame.index], frame)
    # Some customers only; unknown ids are just absent.
    some = list(frame.index[:7]) + ["nobody"]
    part = read_snapshot(engine, some, policy=policy)
    pd.testing.assert_frame_equal(part.loc[frame.index[:7]], frame.iloc[:7])

    # Many customers: the table is read whole and filtered in memory; same answer.
    monkeypatch.setattr(segment_snapshot, "_READ_ALL_ABOVE", 3)
    part = read_snapshot(engine, some, policy=policy, as_of=AS_OF)
    pd.testing.assert_frame_equal(part.loc[frame.index[:7]], frame.iloc[:7])
    assert len(part) == 7


def test_a_fresh_snapshot_plans_exactly_what_segmenting_now_plans(engine, seeded):
    policy = load_policy()
    write_snapshot(engine, segment_frame(seeded, AS_OF, policy), AS_OF, policy)
    segments, used = segments_for(engine, seeded, AS_OF, policy)
    assert used.on_the_fly == 0 and used.from_snapshot == len(seeded.customers)
    pd.testing.assert_frame_equal(segments, segment_frame(seeded, AS_OF, policy))
    with_snapshot = plan(seeded, AS_OF, policy, segments=segments)
    without = plan(seeded, AS_OF, policy)
    assert len(without) > 0
    pd.testing.assert_frame_equal(with_snapshot, without)


def test_the_planners_features_alone_plan_the_same_lines(engine, seeded):
    """An hourly run reads only the segment and the features its plan lines carry
    (FEATURE_COLUMNS); its plan equals the plan with every feature, for customers read from the
    snapshot and for those segmented on the fly."""
    from dunning.policy.planner import FEATURE_COLUMNS

    policy = load_policy()
    full = segment_frame(seeded, AS_OF, policy)
    stored = full.index[: len(full) // 2]
    write_snapshot(engine, full.loc[stored], AS_OF, policy)
    segments, used = segments_for(engine, seeded, AS_OF, policy, features=FEATURE_COLUMNS)
    assert used.from_snapshot == len(stored) and used.on_the_fly == len(full) - len(stored)
    assert list(segments.columns) == [*FEATURE_COLUMNS, "segment"]
    pd.testing.assert_frame_equal(segments, full[[*FEATURE_COLUMNS, "segment"]])
    pd.testing.assert_frame_equal(
        plan(seeded, AS_OF, policy, segments=segments), plan(seeded, AS_OF, policy)
    )
    with pytest.raises(ValueError, match="unknown segmentation feature"):
        read_snapshot(engine, features=["on_time_share", "shoe_size"])


def test_customers_without_a_usable_row_are_segmented_on_the_fly(engine, seeded):
    policy = load_policy()
    frame = segment_frame(seeded, AS_OF, policy)
    stored = frame.iloc[10:]
    write_snapshot(engine, stored, AS_OF, policy)
    segments, used = segments_for(engine, seeded, AS_OF, policy)
    assert (used.from_snapshot, used.on_the_fly) == (len(frame) - 10, 10)
    pd.testing.assert_frame_equal(segments, frame)

    # A snapshot row says something the history now contradicts: it is what the run uses.
    flipped = frame.copy()
    first = flipped.index[20]
    other = next(s for s in policy.segments if s != frame.at[first, "segment"])
    flipped.loc[first, "segment"] = other
    write_snapshot(engine, flipped, AS_OF, policy)
    segments, _ = segments_for(engine, seeded, AS_OF, policy)
    assert segments.at[first, "segment"] == other

    # Rows newer than the run's as-of, older than the maximum age, or of another policy
    # segmentation are not used: everyone is segmented on the fly.
    earlier = AS_OF - dt.timedelta(hours=1)
    _, used = segments_for(engine, seeded, earlier, policy)
    assert used.from_snapshot == 0
    _, used = segments_for(engine, seeded, AS_OF + dt.timedelta(days=3), policy)
    assert used.from_snapshot == 0
    _, used = segments_for(
        engine, seeded, AS_OF + dt.timedelta(days=3), policy, max_age=dt.timedelta(days=4)
    )
    assert used.from_snapshot == len(frame)
    changed = dataclasses.replace(
        policy,
        rules=(SegmentRule("vip", (Condition("invoice_count", ">=", 1000),)), *policy.rules),
    )
    assert policy_fingerprint(changed) != policy_fingerprint(policy)
    segments, used = segments_for(engine, seeded, AS_OF, changed)
    assert used.from_snapshot == 0
    pd.testing.assert_frame_equal(segments, segment_frame(seeded, AS_OF, changed))


def test_a_new_snapshot_records_the_movement_since_the_last(engine, seeded):
    policy = load_policy()
    frame = segment_frame(seeded, AS_OF, policy)
    write_snapshot(engine, frame.iloc[:-3], AS_OF, policy)
    moved = frame.copy()
    who = moved.index[0]
    was = str(frame.at[who, "segment"])
    now = next(s for s in policy.segments if s != was)
    moved.loc[who, "segment"] = now
    later = AS_OF + dt.timedelta(days=1)
    written = write_snapshot(engine, moved, later, policy)
    m = written.movement.set_index(["from_segment", "to_segment"])["customers"]
    assert m[(was, now)] == 1
    assert m.xs(NEW, level="from_segment").sum() == 3
    assert written.moved == 1
    assert int(m.sum()) == len(frame)
    with engine.connect() as conn:
        row = conn.execute(
            select(
                CustomerSegment.previous_segment, CustomerSegment.segment, CustomerSegment.as_of
            ).where(CustomerSegment.customer_id == who)
        ).one()
        assert (row.previous_segment, row.segment, row.as_of) == (was, now, later)
        total = conn.execute(select(func.count()).select_from(CustomerSegment)).scalar()
    assert total == len(frame)

    # replace=False: only the given customers' rows change.
    write_snapshot(engine, frame.iloc[:1], later, policy, replace=False)
    back = read_snapshot(engine, policy=policy)
    assert back.at[who, "segment"] == was and len(back) == len(frame)


def test_a_frame_of_another_shape_or_a_naive_as_of_is_refused(engine, seeded):
    policy = load_policy()
    frame = segment_frame(seeded, AS_OF, policy)
    with pytest.raises(ValueError, match="lacks column"):
        write_snapshot(engine, frame.drop(columns=["tenure_days"]), AS_OF, policy)
    with pytest.raises(ValueError, match="timezone-aware"):
        write_snapshot(engine, frame, AS_OF.replace(tzinfo=None), policy)
    with pytest.raises(ValueError, match="timezone-aware"):
        read_snapshot(engine, as_of=AS_OF.replace(tzinfo=None))


def test_the_segments_command_stores_the_snapshot_with_snapshot_and_prints_the_same(engine, seeded):
    import json

    from typer.testing import CliRunner

    import dunning.cli.policy  # noqa: F401  (registers the commands on app)
    from dunning.cli.app import app

    def run(*args: str) -> tuple[list[dict[str, object]], str]:
        result = CliRunner().invoke(app, ["segments", "--as-of", AS_OF.isoformat(), *args])
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return lines, result.stderr

    plain, _ = run("--json")
    assert read_snapshot(engine).empty
    stored, said = run("--json", "--snapshot")
    assert stored == plain  # stdout's contract is unchanged
    assert f"snapshot stored: {len(seeded.customers)} customer(s)" in said
    policy = load_policy()
    back = read_snapshot(engine, policy=policy, as_of=AS_OF)
    frame = segment_frame(seeded, AS_OF, policy)
    pd.testing.assert_frame_equal(back.loc[frame.index], frame)
