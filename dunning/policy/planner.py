"""The planner: which reminder each invoice is due for, on which channel, now or when.

Pure pandas/numpy over a Portfolio: no database, no network, no Prefect. Every rule is a
vectorised mask; loops run only over segments, time zones and (time zone, country) pairs.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from dunning.core.portfolio import Portfolio
from dunning.core.skip import SkipReason, first_reasons
from dunning.core.status import NOT_SENT, OPEN, SENT_OR_LATER, WENT_OUT
from dunning.core.status import ReminderStatus as S
from dunning.policy.ladder import OPERATOR_REASON_PREFIX, StageTable, climb, stage_table
from dunning.policy.model import RETRY_SUFFIX, Policy
from dunning.policy.window import local_days, window_frame
from dunning.segments.features import aligned, compute_features, minor_threshold
from dunning.segments.rules import assign_segments

PLAN_COLUMNS = [
    "invoice_id",
    "invoice_number",
    "customer_id",
    "segment",
    "stage",
    "channel",
    "action",
    "reason",
    "not_before",
    "tone",
    "days_overdue",
    "currency",
    "balance_minor",
    "locale",
]
FEATURE_COLUMNS = [
    "on_time_share",
    "p90_days_late",
    "failed_attempts_90d",
    "oldest_open_days_overdue",
]
CHANNELS = ("email", "sms", "voice")  # channel codes 0, 1, 2
VOICE = CHANNELS.index("voice")
SMS = CHANNELS.index("sms")
_NAT = np.datetime64("NaT", "ns")
_MISSING = np.iinfo(np.int64).min  # NaT as int64 nanoseconds: earlier than any instant


def _ns(instants: pd.Series) -> np.ndarray:
    """Instants as int64 nanoseconds since the epoch, UTC (missing: _MISSING)."""
    return pd.to_datetime(instants, utc=True).to_numpy("datetime64[ns]").view(np.int64)


def check_as_of(as_of: datetime) -> datetime:
    """``as_of`` converted to UTC; a naive datetime is refused (instants are tz-aware UTC)."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware (UTC)")
    return as_of.astimezone(UTC)


def segment_frame(portfolio: Portfolio, as_of: datetime, policy: Policy) -> pd.DataFrame:
    """Features per customer (index customer_id) with the customer's segment.

    Raises ValueError when a customer was loaded with only the planner's part of its history
    (``full_history`` False: the hourly load of a customer with a usable segmentation
    snapshot row, see ``dunning.portfolio.load_portfolio``): its segment must come from the
    snapshot (``plan(..., segments=)``), never from a partial history.
    """
    cust = portfolio.customers
    if "full_history" in cust.columns and not cust["full_history"].to_numpy(bool).all():
        raise ValueError(
            "segment_frame: the portfolio has customers loaded without their full history "
            "(full_history False); pass their segments from the snapshot "
            "(dunning.segment_snapshot.segments_for) or load the full history"
        )
    feats = compute_features(portfolio, check_as_of(as_of), policy)
    feats["segment"] = assign_segments(feats, policy)
    return feats


def plan(
    portfolio: Portfolio, as_of: datetime, policy: Policy, segments: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (invoice, channel) considered at ``as_of``: send, defer or skip with reason.

    ``segments`` (from segment_frame) may be passed to reuse a segmentation across calls.
    """
    as_of = check_as_of(as_of)
    feats = segments if segments is not None else segment_frame(portfolio, as_of, policy)
    table = stage_table(policy)
    inv, keys = _invoice_frame(portfolio, as_of, policy, feats, table)
    rows = _expand_channels(inv, table)
    cust = _customers_of(rows, portfolio.customers.reset_index(drop=True))
    return _decide(rows, cust, keys, as_of, policy, feats, table)


def _invoice_frame(
    portfolio: Portfolio, as_of: datetime, policy: Policy, feats: pd.DataFrame, table: StageTable
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """(invoices with customer position, local day, days overdue and stage code; done keys)."""
    inv = portfolio.invoices
    if "in_scope" in inv.columns:
        inv = inv.loc[inv["in_scope"].to_numpy(bool)]
    cust = portfolio.customers.reset_index(drop=True)
    pos = portfolio.customer_positions(inv["customer_id"])
    inv, pos = inv.loc[pos >= 0], pos[pos >= 0]
    today_by_customer = local_days(cust["timezone"], as_of)
    today = today_by_customer[pos]
    days = (today - inv["due_on"].to_numpy("datetime64[D]")).astype(np.int64)
    seg_pos = pd.Index(feats.index).get_indexer(pd.Index(cust["customer_id"].astype(str)))
    seg_codes = pd.Categorical(
        feats["segment"].to_numpy()[seg_pos], categories=table.segments
    ).codes[pos]
    led = _ledger_codes(portfolio, table)
    last_sent, last_day = _last_sent(led, inv["invoice_id"], table, zones=cust["timezone"], pos=pos)
    # Local days since the last reminder sent; "never" is further back than any gap.
    gap = np.where(np.isnat(last_day), 1 << 30, (today - last_day).astype(np.int64))
    code = np.full(len(inv), -1, dtype=np.int64)
    escalated = np.zeros(len(inv), dtype=bool)
    for i, seg in enumerate(table.segments):
        mask = seg_codes == i
        code[mask], escalated[mask] = climb(
            policy.ladder_for(seg), table, days[mask], last_sent[mask], gap[mask]
        )
    out = pd.DataFrame(
        {
            "invoice_id": inv["invoice_id"].to_numpy(np.int64),
            "invoice_number": inv["invoice_number"].to_numpy(),
            "customer_id": inv["customer_id"].astype(str).to_numpy(),
            "currency": inv["currency"].astype(str).to_numpy(),
            "status": inv["status"].astype(str).to_numpy(),
            "balance_minor": inv["amount_minor"].to_numpy(np.int64)
            - inv["paid_minor"].to_numpy(np.int64),
            "today": today,
            "days": days,
            "seg": seg_codes,
            "code": code,
            "escalated": escalated,
            "promise": inv["promise_to_pay_on"].to_numpy("datetime64[D]"),
            "inv_paused": inv["paused_until"].to_numpy("datetime64[D]"),
            "cpos": pos,
        }
    )
    return _apply_ledger(out, led, portfolio, as_of, policy, table)


def _last_sent(
    led: pd.DataFrame, ids: pd.Series, table: StageTable, *, zones: pd.Series, pos: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per invoice of ``ids``: the highest ladder code actually sent (-1 none) and the local
    date (customer zone at position ``pos`` of ``zones``) of the latest ladder reminder sent
    (NaT none)."""
    ladder_sent = led.loc[led["sent"] & (led["code"] >= 0) & (led["code"] < table.payment_failed)]
    top = aligned(ids, ladder_sent.groupby("invoice_id")["code"].max())
    last = _ns(aligned(ids, ladder_sent.groupby("invoice_id")["when"].max()))
    return top.fillna(-1).to_numpy(np.int64), _local_dates(last, zones.to_numpy()[pos])


def _ledger_codes(portfolio: Portfolio, table: StageTable) -> pd.DataFrame:
    """The ledger with stage code, channel code (email 0, sms 1, voice 2), flags and row instant.

    ``done``: the row consumes its (invoice, stage, channel): anything but planned, except a
    reminder that never reached the provider (failed, skipped), unless an operator decided.
    ``sent``: the provider accepted it (sent or later). ``failed``: it failed permanently."""
    led = portfolio.ledger
    stages = led["stage"].astype("category")
    cat_codes = table.code_of(np.asarray(stages.cat.categories))
    codes = np.where(stages.cat.codes.to_numpy() >= 0, cat_codes[stages.cat.codes.to_numpy()], -1)
    # A call's retry (final_notice.retry) ranks nothing, but knows the stage it retries.
    names = np.asarray(stages.cat.categories.astype(str), dtype=object)
    bases = np.array([n.removesuffix(RETRY_SUFFIX) for n in names], dtype=object)
    pos = stages.cat.codes.to_numpy()
    is_retry = np.append(bases != names, False)[pos]  # code -1 (no stage) picks False
    base_codes = np.where(pos >= 0, np.append(table.code_of(bases), -1)[pos], -1)
    outcome = led["call_outcome"] if "call_outcome" in led else pd.Series(None, index=led.index)
    # A reminder's logical time is the instant its run acted as of (planned_for); rows from
    # before that column existed fall back to when they were sent, claimed or planned.
    when = (
        led["planned_for"]
        .fillna(led["sent_at"])
        .fillna(led["claimed_at"])
        .fillna(led["planned_at"])
    )
    status = led["status"].astype(str)
    reason = led["reason"] if "reason" in led.columns else pd.Series("", index=led.index)
    operator = reason.fillna("").astype(str).str.startswith(OPERATOR_REASON_PREFIX).to_numpy()
    not_sent = status.isin(NOT_SENT).to_numpy() & ~operator
    return pd.DataFrame(
        {
            "invoice_id": led["invoice_id"].to_numpy(np.int64),
            "code": codes,
            "ch": pd.Categorical(led["channel"].astype(str), categories=CHANNELS).codes.astype(
                np.int64
            ),
            "done": ~status.isin(OPEN).to_numpy() & ~not_sent,
            "sent": status.isin(SENT_OR_LATER).to_numpy(),
            "failed": (status == S.FAILED_PERMANENT).to_numpy(),
            "went_out": status.isin(WENT_OUT).to_numpy(),
            "open": status.isin(OPEN).to_numpy(),
            "when": pd.to_datetime(when, utc=True),
            "retry": is_retry,
            "base": base_codes,
            "no_answer": (outcome.astype(object) == "no-answer").to_numpy(),
        }
    )


def _apply_ledger(
    inv: pd.DataFrame,
    led: pd.DataFrame,
    portfolio: Portfolio,
    as_of: datetime,
    policy: Policy,
    table: StageTable,
) -> tuple[pd.DataFrame, tuple[np.ndarray, np.ndarray]]:
    """(``inv`` with the stage code to plan; the keys of done ledger rows and of rows that
    failed on the customer's local today).

    payment_failed and promise_broken take precedence over the ladder stage.
    """
    ids = inv["invoice_id"]
    ladder_rows = led.loc[(led["code"] >= 0) & (led["code"] < table.payment_failed)]
    max_done = ladder_rows.loc[ladder_rows["done"]].groupby("invoice_id")["code"].max()
    inv["max_done"] = aligned(ids, max_done).fillna(-1).astype(np.int64).to_numpy()
    last_row = _ns(aligned(ids, ladder_rows.groupby("invoice_id")["when"].max()))
    done_extras = led.loc[led["done"] & (led["code"] >= table.payment_failed)]
    att = portfolio.attempts
    att = att.loc[_ns(att["attempted_at"]) <= _ns(pd.Series([as_of]))[0]]
    failed = att["outcome"].astype(str).to_numpy() == "failed"
    last_failed = _ns(aligned(ids, att.loc[failed].groupby("invoice_id")["attempted_at"].max()))
    last_ok = _ns(aligned(ids, att.loc[~failed].groupby("invoice_id")["attempted_at"].max()))
    # A later successful charge shows the payment method works again: no reminder to update it.
    pf = (
        policy.payment_failed.enabled
        & (last_failed != _MISSING)
        & (last_failed > last_ok)
        & (last_failed > last_row)
        & ~ids.isin(
            done_extras.loc[done_extras["code"] == table.payment_failed, "invoice_id"]
        ).to_numpy()
    )
    last_day = np.where(
        last_row == _MISSING, np.datetime64("NaT", "ns"), last_row.view("datetime64[ns]")
    ).astype("datetime64[D]")
    promise = inv["promise"].to_numpy()
    pb = (
        policy.promise_broken.enabled
        & ~np.isnat(promise)
        & (promise < inv["today"].to_numpy())
        & (np.isnat(last_day) | (last_day <= promise))
        & ~ids.isin(
            done_extras.loc[done_extras["code"] == table.promise_broken, "invoice_id"]
        ).to_numpy()
    )
    inv["code"] = np.where(
        pf, table.payment_failed, np.where(pb, table.promise_broken, inv["code"].to_numpy())
    )
    # The stage that went out last, and when: a different stage the same local day waits for
    # tomorrow; the same stage on its other channel (or retried after an outage) does not.
    went = led.loc[led["went_out"]]
    last = went.loc[went.groupby("invoice_id")["when"].idxmax()].set_index("invoice_id")
    last_out = _ns(aligned(ids, last["when"]))
    last_code = aligned(ids, last["code"]).fillna(-1).to_numpy(np.int64)
    inv["reminded_today"] = (_local_day(last_out, portfolio, inv) == inv["today"].to_numpy()) & (
        last_code != inv["code"].to_numpy()
    )
    inv["has_open_row"] = ids.isin(led.loc[led["open"], "invoice_id"]).to_numpy()
    inv["called_today"] = _called_today(led, portfolio, inv)
    inv["sms_today"] = _sent_today(led, portfolio, inv, SMS)
    inv["retry_call"] = policy.voice_retry_no_answer & _missed_call(led, inv, table)
    keep = (inv["code"].to_numpy() >= 0) & (
        np.isin(inv["status"].to_numpy(), ("open", "disputed")) | inv["has_open_row"].to_numpy()
    )
    # A permanent failure is tried again, but from the customer's next local day: a provider
    # that refuses an address is not asked again every hourly run.
    failed = led.loc[led["failed"]]
    where = pd.Index(ids).get_indexer(failed["invoice_id"])
    failed, where = failed.loc[where >= 0], where[where >= 0]
    zones = portfolio.customers.reset_index(drop=True)["timezone"].astype(str).to_numpy()
    failed_day = _local_dates(_ns(failed["when"]), zones[inv["cpos"].to_numpy()[where]])
    failed = failed.loc[failed_day == inv["today"].to_numpy()[where]]
    inv = inv.loc[keep].reset_index(drop=True)
    done = led.loc[led["done"]]
    return inv, (
        _key(done["invoice_id"].to_numpy(), done["code"].to_numpy(), done["ch"].to_numpy(), table),
        _key(
            failed["invoice_id"].to_numpy(),
            failed["code"].to_numpy(),
            failed["ch"].to_numpy(),
            table,
        ),
    )


def _missed_call(led: pd.DataFrame, inv: pd.DataFrame, table: StageTable) -> np.ndarray:
    """Per invoice, whether its call for the stage it is at went unanswered (no-answer) and
    has not been retried yet: the policy's voice retry_no_answer places it once more."""
    width = len(table.names) + 1
    calls = led.loc[led["ch"].to_numpy() == VOICE]
    missed = calls.loc[calls["no_answer"].to_numpy() & ~calls["retry"].to_numpy(bool)]
    retried = calls.loc[calls["retry"].to_numpy(bool)]
    key = inv["invoice_id"].to_numpy(np.int64) * width + inv["code"].to_numpy(np.int64) + 1
    return np.isin(
        key, missed["invoice_id"].to_numpy(np.int64) * width + missed["code"].to_numpy() + 1
    ) & ~np.isin(
        key, retried["invoice_id"].to_numpy(np.int64) * width + retried["base"].to_numpy() + 1
    )


def _called_today(led: pd.DataFrame, portfolio: Portfolio, inv: pd.DataFrame) -> np.ndarray:
    """Per invoice, whether a call to its customer (about any invoice) went out on the
    customer's local today: at most one call per customer per day."""
    calls = led.loc[led["went_out"].to_numpy() & (led["ch"].to_numpy() == VOICE)]
    if calls.empty:
        return np.zeros(len(inv), dtype=bool)
    invoices = portfolio.invoices
    owner = pd.Series(
        invoices["customer_id"].astype(str).to_numpy(), index=invoices["invoice_id"].to_numpy()
    )
    last = (
        pd.Series(_ns(calls["when"]), index=owner.reindex(calls["invoice_id"].to_numpy()).array)
        .groupby(level=0)
        .max()
    )
    last_call = last.reindex(inv["customer_id"].to_numpy()).fillna(_MISSING).to_numpy(np.int64)
    return _local_day(last_call, portfolio, inv) == inv["today"].to_numpy()


def _sent_today(
    led: pd.DataFrame, portfolio: Portfolio, inv: pd.DataFrame, channel: int
) -> np.ndarray:
    """Per invoice, how many reminders on ``channel`` (code) went out (or may have) to its
    customer, about any invoice, on the customer's local today."""
    rows = led.loc[led["went_out"].to_numpy() & (led["ch"].to_numpy() == channel)]
    if rows.empty or inv.empty:
        return np.zeros(len(inv), dtype=np.int64)
    invoices = portfolio.invoices
    owner = pd.Series(
        invoices["customer_id"].astype(str).to_numpy(), index=invoices["invoice_id"].to_numpy()
    )
    customer = owner.reindex(rows["invoice_id"].to_numpy()).to_numpy()
    cust = portfolio.customers.reset_index(drop=True)
    where = pd.Index(cust["customer_id"].astype(str)).get_indexer(pd.Index(customer))
    found = where >= 0
    zones = cust["timezone"].astype(str).to_numpy()[where[found]]
    day = _local_dates(_ns(rows["when"])[found], zones)
    frame = pd.DataFrame({"customer_id": customer[found], "day": day})
    mine = pd.DataFrame(
        {"customer_id": inv["customer_id"].to_numpy(), "day": inv["today"].to_numpy()}
    ).drop_duplicates()
    counts = frame.merge(mine, on=["customer_id", "day"]).groupby("customer_id").size()
    return counts.reindex(inv["customer_id"].to_numpy()).fillna(0).to_numpy(np.int64)


def _local_day(instants: np.ndarray, portfolio: Portfolio, inv: pd.DataFrame) -> np.ndarray:
    """Each invoice's instant (int64 ns, _MISSING = none) as a date in its customer's zone."""
    zones = portfolio.customers.reset_index(drop=True)["timezone"].astype(str).to_numpy()
    return _local_dates(instants, zones[inv["cpos"].to_numpy()])


def _local_dates(instants: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """Instants (int64 ns, _MISSING = none) as dates in the zone named alongside each."""
    zone = zone.astype(str)
    out = np.full(len(instants), np.datetime64("NaT"), dtype="datetime64[D]")
    present = instants != _MISSING
    for name in np.unique(zone[present]):
        mask = present & (zone == name)
        stamps = pd.to_datetime(instants[mask], utc=True)
        try:
            local = stamps.tz_convert(name)
        except Exception:  # noqa: BLE001 - an unknown zone counts as UTC, as local_days does
            local = stamps
        out[mask] = local.tz_localize(None).to_numpy("datetime64[D]")
    return out


def _key(invoice_id: np.ndarray, code: np.ndarray, ch: np.ndarray, table: StageTable) -> np.ndarray:
    """One int64 per (invoice, stage code, channel code), for set membership tests."""
    width = len(CHANNELS) * (len(table.names) + 1)
    return (
        invoice_id.astype(np.int64) * width
        + (code.astype(np.int64) + 1) * len(CHANNELS)
        + ch.astype(np.int64)
    )


def _expand_channels(inv: pd.DataFrame, table: StageTable) -> pd.DataFrame:
    """One row per (invoice, channel) the chosen stage uses in the invoice's segment."""
    seg, code = inv["seg"].to_numpy(), inv["code"].to_numpy()
    parts = []
    for ch, flags in ((0, table.email), (1, table.sms), (VOICE, table.voice)):
        part = inv.loc[flags[seg, code]].copy()
        part["ch"], part["retry"] = ch, False
        parts.append(part)
    # A second call after an unanswered one: its own line (stage <stage>.retry).
    again = inv.loc[inv["retry_call"].to_numpy(bool) & table.voice[seg, code]].copy()
    again["ch"], again["retry"] = VOICE, True
    parts.append(again)
    rows = pd.concat(parts, ignore_index=True)
    return rows.sort_values(["invoice_id", "ch"], kind="stable", ignore_index=True)


def _decide(
    rows: pd.DataFrame,
    cust: dict[str, np.ndarray],
    keys: tuple[np.ndarray, np.ndarray],
    as_of: datetime,
    policy: Policy,
    feats: pd.DataFrame,
    table: StageTable,
) -> pd.DataFrame:
    """The plan lines: the first skip reason that applies, else defer outside the window,
    else send."""
    today, code, ch = rows["today"].to_numpy(), rows["code"].to_numpy(), rows["ch"].to_numpy()
    status = rows["status"].to_numpy()
    minimum = minor_threshold(
        rows["currency"], dict(policy.min_balance_by_currency), policy.min_balance
    )
    email, sms, voice = ch == 0, ch == 1, ch == VOICE
    retry = rows["retry"].to_numpy(bool)
    row_keys = _key(rows["invoice_id"].to_numpy(), code, ch, table)
    done = np.isin(row_keys, keys[0]) & ~retry
    failed_today = np.isin(row_keys, keys[1]) & ~retry
    facts = {
        "status": status,
        "balance": rows["balance_minor"].to_numpy(),
        "minimum": minimum.to_numpy(),
        "today": today,
        "customer_paused_until": cust["paused_until"],
        "invoice_paused_until": rows["inv_paused"].to_numpy(),
        "promise_to_pay_on": rows["promise"].to_numpy(),
        "email": email,
        "sms": sms,
        "voice": voice,
        **{
            name: cust[name]
            for name in (
                "has_email",
                "has_phone",
                "email_opt_out",
                "sms_opt_out",
                "sms_consent",
                "voice_opt_out",
                "voice_consent",
                "not_mobile",
            )
        },
        "in_ladder": code < table.payment_failed,
        "escalated": rows["escalated"].to_numpy(bool),
        "code": code,
        "max_done": rows["max_done"].to_numpy(),
        "done": done,
        "failed_today": failed_today,
        "reminded_today": rows["reminded_today"].to_numpy(bool),
        "called_today": rows["called_today"].to_numpy(bool),
    }
    # The first skip reason that applies, by the one ordered rule set the ledger's claim
    # re-check also uses (dunning.core.skip).
    skip = first_reasons(facts)
    skip = np.where(
        _second_call(rows, voice & (skip == "")), str(SkipReason.ONE_CALL_PER_DAY), skip
    )
    zones, countries = pd.Series(cust["timezone"]), pd.Series(cust["country"])
    regions = pd.Series(cust["region"])
    defer, start = window_frame(zones, countries, as_of, policy.send_window, regions)
    if voice.any():
        # Calls keep their own, stricter window (voice_window) and the same holidays.
        vdefer, vstart = window_frame(zones, countries, as_of, policy.voice_window, regions)
        defer, start = np.where(voice, vdefer, defer), np.where(voice, vstart, start)
    # At most max_sms_per_customer_per_day SMS per customer per local day, across invoices:
    # the most overdue go first, the others wait for the customer's next open window.
    together = np.array(
        [policy.consolidate_for(str(name)) == "customer" for name in table.segments], dtype=bool
    )
    capped = _over_sms_cap(
        rows, sms & (skip == "") & (defer == ""), policy, together[rows["seg"].to_numpy()]
    )
    if capped.any():
        defer = np.where(capped, SkipReason.SMS_DAILY_CAP.value, defer)
        start = np.where(capped, _next_day_start(rows, cust, capped, policy), start)
    is_skip, is_defer = skip != "", (skip == "") & (defer != "")
    action = np.where(is_skip, "skip", np.where(is_defer, "defer", "send"))
    as_of_ns = np.datetime64(as_of.replace(tzinfo=None), "ns")
    not_before = np.where(is_skip, _NAT, np.where(is_defer, start, as_of_ns))
    seg = rows["seg"].to_numpy()
    out = pd.DataFrame(
        {
            "invoice_id": rows["invoice_id"].to_numpy(np.int64),
            "invoice_number": rows["invoice_number"].to_numpy(),
            "customer_id": rows["customer_id"].to_numpy(),
            "segment": pd.Categorical.from_codes(seg, categories=pd.Index(table.segments)),
            "stage": _stage_names(code, retry, table),
            "channel": pd.Categorical.from_codes(ch, categories=pd.Index(CHANNELS)),
            "action": pd.Categorical(action, categories=["send", "defer", "skip"]),
            # Plain strings: the flow may add its own reasons (e.g. max_messages_per_run).
            "reason": np.where(is_skip, skip, defer).astype(object),
            "not_before": pd.to_datetime(not_before).tz_localize("UTC"),
            "tone": pd.Categorical(table.tones[seg, code]),
            "days_overdue": rows["days"].to_numpy(np.int64),
            "currency": rows["currency"].to_numpy(),
            "balance_minor": rows["balance_minor"].to_numpy(np.int64),
            "locale": cust["locale"],
        }
    )
    extra = (
        feats[FEATURE_COLUMNS]
        .reset_index(drop=True)
        .iloc[pd.Index(feats.index).get_indexer(pd.Index(out["customer_id"]))]
        .reset_index(drop=True)
    )
    return pd.concat([out, extra], axis=1)


def _stage_names(code: np.ndarray, retry: np.ndarray, table: StageTable) -> pd.Categorical[str]:
    """The stage of each line; a call's retry is ``<stage>.retry`` (categories grow only when
    a plan has one, so reports of plans without calls keep their stage categories)."""
    names = list(table.names)
    if retry.any():
        names += [n + RETRY_SUFFIX for n in table.names]
        code = np.where(retry, code + len(table.names), code)
    return pd.Categorical.from_codes(code, categories=pd.Index(names))


def _over_sms_cap(
    rows: pd.DataFrame, candidates: np.ndarray, policy: Policy, together: np.ndarray | None = None
) -> np.ndarray:
    """Which ``candidates`` (SMS lines that would go out now) exceed the customer's daily
    SMS cap, counting the SMS already sent to them today; most days overdue go first.
    ``together``: rows of customers with one message per customer, whose SMS lines of a run
    are one SMS (they count once, and all go or all wait)."""
    if not candidates.any():
        return np.zeros(len(rows), dtype=bool)
    order = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].to_numpy(),
            "days": rows["days"].to_numpy(),
            "invoice_id": rows["invoice_id"].to_numpy(),
        }
    ).loc[candidates]
    order = order.sort_values(["customer_id", "days", "invoice_id"], ascending=[True, False, True])
    rank = order.groupby("customer_id").cumcount().reindex(rows.index).to_numpy()
    if together is not None:
        rank = np.where(together, 0, rank)
    already = rows["sms_today"].to_numpy(np.int64)
    cap = policy.max_sms_per_customer_per_day
    return candidates & (np.nan_to_num(rank, nan=0) + already >= cap)


def _next_day_start(
    rows: pd.DataFrame, cust: dict[str, np.ndarray], mask: np.ndarray, policy: Policy
) -> np.ndarray:
    """The send-window start from the customer's next local day on, for the rows in
    ``mask`` (UTC datetime64[ns]; NaT elsewhere)."""
    out = np.full(len(rows), _NAT, dtype="datetime64[ns]")
    zones = np.asarray(cust["timezone"]).astype(str)
    today = rows["today"].to_numpy("datetime64[D]")
    for zone, day in set(zip(zones[mask], today[mask], strict=True)):
        sel = mask & (zones == zone) & (today == day)
        try:
            tz: Any = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = UTC
        midnight = datetime.combine(
            pd.Timestamp(day).date() + timedelta(days=1), time.min, tzinfo=tz
        ).astimezone(UTC)
        reason, start = window_frame(
            pd.Series(zones[sel]),
            pd.Series(np.asarray(cust["country"])[sel]),
            midnight,
            policy.send_window,
            pd.Series(np.asarray(cust["region"])[sel]),
        )
        midnight_ns = np.datetime64(midnight.replace(tzinfo=None), "ns")
        out[sel] = np.where(reason == "", midnight_ns, start)
    return out


def _second_call(rows: pd.DataFrame, calls: np.ndarray) -> np.ndarray:
    """Per row, whether it is a call to a customer this plan already calls about another
    invoice: only the call about the largest balance is kept (one call per customer per day)."""
    if calls.sum() < 2:
        return np.zeros(len(rows), dtype=bool)
    candidates = pd.DataFrame(
        {
            "customer": rows["customer_id"].to_numpy()[calls],
            "balance": rows["balance_minor"].to_numpy()[calls],
        },
        index=np.flatnonzero(calls),
    ).sort_values(["customer", "balance"], ascending=[True, False], kind="stable")
    out = np.zeros(len(rows), dtype=bool)
    out[candidates.index[candidates["customer"].duplicated().to_numpy()]] = True
    return out


def _customers_of(rows: pd.DataFrame, cust: pd.DataFrame) -> dict[str, np.ndarray]:
    """The customer attributes of every row (by its customer position), aligned with ``rows``."""
    pos = rows["cpos"].to_numpy()
    return (
        {
            col: (
                cust[col].to_numpy()[pos]
                if col in ("timezone", "country", "locale")
                else cust[col].to_numpy(bool)[pos]
            )
            for col in (
                "timezone",
                "country",
                "locale",
                "email_opt_out",
                "has_email",
                "sms_opt_out",
                "sms_consent",
                "has_phone",
            )
        }
        | {"paused_until": cust["paused_until"].to_numpy("datetime64[D]")[pos]}
        | {
            # A portfolio built by hand (tests, notebooks) may lack the voice columns: no consent.
            col: cust[col].to_numpy(bool)[pos] if col in cust else np.zeros(len(pos), dtype=bool)
            for col in ("voice_consent", "voice_opt_out", "not_mobile")
        }
        | {
            # ISO 3166-2 region for regional holidays; "" when none (the window then takes the
            # region the time zone names, if any).
            "region": (
                cust["region"].astype(object).where(cust["region"].notna(), "").to_numpy()[pos]
                if "region" in cust
                else np.full(len(pos), "", dtype=object)
            )
        }
    )
