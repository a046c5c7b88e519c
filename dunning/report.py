"""The outcome of a reminder run: one row per plan line, counts, markdown for the UI."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from dunning.core.status import RUN_OUTCOME
from dunning.db.models import Reminder

ACTIONS = ("sent", "failed", "skipped", "deferred", "pending", "unknown", "planned")
#: The outcomes the failures artifact lists: failed, fate unknown, left for the next run.
FAILURE_OUTCOMES = ("failed", "unknown", "pending")
#: A dry run's table columns: outcome -> heading.
DRY_RUN_COLUMNS = {"planned": "would send", "skipped": "skipped", "deferred": "deferred"}
_COLUMNS = [
    "invoice_number",
    "customer_id",
    "segment",
    "stage",
    "channel",
    "action",
    "outcome",
    "reason",
    "error_code",
    "not_before",
]
#: What a shard run stores for its coordinator: enough to rebuild counts, the by-segment,
#: stage and channel tables, skip reasons, the funnel and the failures table.
_COMPACT = [
    "segment",
    "stage",
    "channel",
    "action",
    "outcome",
    "reason",
    "error_code",
    "invoice_number",
]


def outcomes(
    engine: Engine | None, plan: pd.DataFrame, *, claimer: str, dry_run: bool
) -> pd.DataFrame:
    """One row per plan line with the run's ``outcome`` for it.

    Send lines take their outcome from the ledger (sent, failed, skipped at claim time,
    pending when left for the next run, unknown after an unsettled crash); a row sent by
    another run counts as skipped(already_sent). In a dry run send lines are ``planned``.
    """
    if plan.empty:
        return pd.DataFrame(columns=_COLUMNS)
    frame = plan.copy()
    for col in frame.columns:  # the planner uses categoricals; outcomes need free text
        if isinstance(frame[col].dtype, pd.CategoricalDtype):
            frame[col] = frame[col].astype(object)
    words = {"skip": "skipped", "defer": "deferred", "send": "planned"}
    frame["outcome"] = frame["action"].map(words)
    frame["error_code"] = None
    sends = frame["action"] == "send"
    if not dry_run and sends.any() and engine is not None:
        ids = frame.loc[sends, "invoice_id"].astype(int).unique().tolist()
        rows: list[Any] = []
        with engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows.extend(
                    conn.execute(
                        select(
                            Reminder.invoice_id,
                            Reminder.stage,
                            Reminder.channel,
                            Reminder.status,
                            Reminder.reason,
                            Reminder.error_code,
                            Reminder.claimed_by,
                        ).where(Reminder.invoice_id.in_(ids[i : i + 500]))
                    ).all()
                )
        led = pd.DataFrame(
            rows,
            columns=[
                "invoice_id",
                "stage",
                "channel",
                "status",
                "l_reason",
                "l_error_code",
                "claimed_by",
            ],
        )
        merged = (
            frame.loc[sends, ["invoice_id", "stage", "channel"]]
            .reset_index()
            .merge(led, on=["invoice_id", "stage", "channel"], how="left")
            .set_index("index")
        )
        outcome = merged["status"].map(RUN_OUTCOME).fillna("pending")
        ours = merged["claimed_by"] == claimer
        by_other = outcome.isin(["sent", "failed"]) & ~ours
        outcome[by_other] = "skipped"
        frame.loc[sends, "outcome"] = outcome
        frame.loc[sends, "reason"] = merged["l_reason"].where(~by_other, "already_sent").fillna("")
        frame.loc[sends, "error_code"] = merged["l_error_code"]
    for col in _COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    return frame[_COLUMNS + [c for c in frame.columns if c not in _COLUMNS]]


@dataclass
class RunReport:
    """What a reminder run did; ``to_frame()`` gives one row per plan line."""

    as_of: dt.datetime
    dry_run: bool
    flow_run_id: str | None
    frame: pd.DataFrame
    reconciled: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    stopped: str | None = None  # why delivery stopped early (auth error, outage)
    # A coordinator's shard runs: shard, flow_run_id, flow_run_name, state, counts.
    shards: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def combine(
        cls,
        as_of: dt.datetime,
        dry_run: bool,
        flow_run_id: str | None,
        parts: list[RunReport],
        shards: list[dict[str, Any]] | None = None,
    ) -> RunReport:
        """One report for a sharded run: the parts' rows together, so every count is the sum
        of the parts'; reconciled counts add up and stop reasons are joined."""
        frames = [p.frame for p in parts if not p.frame.empty]
        frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=_COLUMNS)
        reconciled: Counter[str] = Counter()
        for p in parts:
            reconciled.update(p.reconciled)
        stopped = "; ".join(p.stopped for p in parts if p.stopped) or None
        return cls(
            as_of,
            dry_run,
            flow_run_id,
            frame,
            reconciled=dict(reconciled),
            warnings=[w for p in parts for w in p.warnings],
            stopped=stopped,
            shards=list(shards or []),
        )

    def to_compact(self) -> dict[str, Any]:
        """The report as small JSON: plan lines grouped (with their number ``n``) by segment,
        stage, channel, action, outcome, reason and error code; invoice numbers are kept only
        for failed, unknown and pending lines, which the failures artifact lists one by one."""
        frame = self.frame.reindex(columns=_COMPACT).astype(object)
        if not frame.empty:
            listed = frame["outcome"].isin(FAILURE_OUTCOMES)
            frame.loc[~listed, "invoice_number"] = None
        frame = frame.where(frame.notna(), None)
        rows: list[list[Any]] = []
        if not frame.empty:
            grouped = frame.groupby(_COMPACT, dropna=False, sort=False).size()
            for key, n in grouped.items():
                values = key if isinstance(key, tuple) else (key,)
                rows.append([None if pd.isna(v) else str(v) for v in values] + [int(n)])
        return {
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "flow_run_id": self.flow_run_id,
            "columns": _COMPACT,
            "rows": rows,
            "reconciled": self.reconciled,
            "warnings": self.warnings,
            "stopped": self.stopped,
        }

    @classmethod
    def from_compact(cls, data: dict[str, Any]) -> RunReport:
        """The report ``to_compact`` described: same counts, tables, funnel and failures."""
        columns = list(data["columns"])
        grouped = pd.DataFrame(data["rows"], columns=[*columns, "n"])
        frame = grouped.loc[grouped.index.repeat(grouped["n"]), columns].reset_index(drop=True)
        frame = frame.astype(object).reindex(columns=_COLUMNS)
        return cls(
            dt.datetime.fromisoformat(data["as_of"]),
            bool(data["dry_run"]),
            data.get("flow_run_id"),
            frame,
            reconciled=dict(data.get("reconciled") or {}),
            warnings=list(data.get("warnings") or []),
            stopped=data.get("stopped"),
        )

    def to_frame(self) -> pd.DataFrame:
        """The outcomes as a DataFrame (one row per invoice, stage and channel considered)."""
        return self.frame.copy()

    def counts(self) -> dict[str, int]:
        """Counts by outcome: sent, failed, skipped, deferred (and pending, unknown, planned)."""
        # value_counts, not Counter: counting a 100k-line categorical element by element cost
        # 0.1 s per call, and a run's report calls this several times.
        c = self.frame["outcome"].value_counts() if not self.frame.empty else pd.Series()
        return {a: int(c.get(a, 0)) for a in ACTIONS}

    def _by(self, column: str) -> dict[str, dict[str, int]]:
        if self.frame.empty:
            return {}
        table = self.frame.groupby([column, "outcome"], observed=True).size()
        out: dict[str, dict[str, int]] = {}
        for idx, n in table.items():
            pair: tuple[Any, Any] = idx  # type: ignore[assignment]
            out.setdefault(str(pair[0]), {})[str(pair[1])] = int(n)
        return out

    def skip_reasons(self, top: int = 10) -> list[tuple[str, int]]:
        """The most common reasons for skipped and deferred lines."""
        if self.frame.empty:
            return []
        held = self.frame[self.frame["outcome"].isin(["skipped", "deferred"])]
        return [(str(k), int(v)) for k, v in held["reason"].value_counts().head(top).items()]

    def summary_line(self) -> str:
        """The counts in one line, for the closing log line and the final state's message:
        ``sent 12, failed 1, skipped 3, deferred 5, pending 0, unknown 0`` (a dry run:
        ``would send 12, skipped 3, deferred 5``)."""
        c = self.counts()
        if self.dry_run:
            return f"would send {c['planned']}, skipped {c['skipped']}, deferred {c['deferred']}"
        return ", ".join(f"{a} {c[a]}" for a in ACTIONS[:6])

    def to_json(self) -> dict[str, Any]:
        """The machine-readable summary printed by ``dunning run --json``."""
        return {
            "as_of": self.as_of.isoformat(),
            "dry_run": self.dry_run,
            "flow_run_id": self.flow_run_id,
            "counts": self.counts(),
            "by_channel": self._by("channel"),
            "by_stage": self._by("stage"),
            "by_segment": self._by("segment"),
            "skip_reasons": dict(self.skip_reasons()),
            "reconciled": self.reconciled,
            "stopped": self.stopped,
            # Only a coordinator of shards has this key; other runs' JSON is unchanged.
            **({"shards": self.shards} if self.shards else {}),
        }

    def to_markdown(self) -> str:
        """The run summary as markdown for the Prefect UI."""
        c = self.counts()
        # A dry run's tables count what it would send (its send lines are "planned").
        columns = DRY_RUN_COLUMNS if self.dry_run else dict.fromkeys(ACTIONS[:6], "")
        head = [label or action for action, label in columns.items()]
        lines = [
            f"# Reminder run {'(dry run: nothing was sent) ' if self.dry_run else ''}"
            f"as of {self.as_of:%Y-%m-%d %H:%M} UTC",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---:|" * len(head),
            "| " + " | ".join(str(c[a]) for a in columns) + " |",
        ]
        if self.stopped:
            lines += ["", f"**Delivery stopped early:** {self.stopped}"]
        lines += ["", "## Delivery funnel", "", self.funnel()]
        for title, column in (("segment", "segment"), ("stage", "stage"), ("channel", "channel")):
            by = self._by(column)
            if not by:
                continue
            shown = list(DRY_RUN_COLUMNS) if self.dry_run else list(ACTIONS[:4])
            names = [DRY_RUN_COLUMNS.get(a, a) if self.dry_run else a for a in shown]
            lines += [
                "",
                f"## By {title}",
                "",
                f"| {title} | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(shown),
            ]
            for key, row in sorted(by.items()):
                cells = " | ".join(str(row.get(a, 0)) for a in shown)
                lines.append(f"| {key} | {cells} |")
        reasons = self.skip_reasons()
        if reasons:
            lines += ["", "## Top skip and defer reasons", "", "| reason | count |", "|---|---:|"]
            lines += [f"| {r or '-'} | {n} |" for r, n in reasons]
        if any(self.reconciled.values()):
            lines += ["", f"Reconciled stale claims: {self.reconciled}"]
        if self.shards:
            lines += [
                "",
                "## Shards",
                "",
                "| shard | flow run | state | sent | failed |",
                "|---:|---|---|---:|---:|",
            ]
            for s in self.shards:
                c = s.get("counts") or {}
                lines.append(
                    f"| {s['shard']} | {s.get('flow_run_name') or s.get('flow_run_id') or '-'} "
                    f"| {s.get('state') or '-'} | {c.get('sent', 0)} | {c.get('failed', 0)} |"
                )
        return "\n".join(lines)

    def funnel(self) -> str:
        """considered → due now → accepted by the provider, with where the rest went."""
        if self.frame.empty:
            return "nothing to consider"
        c = self.counts()
        due = int((self.frame["action"] == "send").sum())
        if self.dry_run:
            return f"considered {len(self.frame)} → due now {due} → would send {c['planned']}"
        stopped_at_claim = int(
            ((self.frame["action"] == "send") & (self.frame["outcome"] == "skipped")).sum()
        )
        return (
            f"considered {len(self.frame)} → due now {due} → accepted by the provider "
            f"{c['sent']} (failed {c['failed']}, stopped at claim {stopped_at_claim}, "
            f"left for the next run {c['pending']}, unknown {c['unknown']})"
        )

    def failures(self) -> list[dict[str, Any]]:
        """The reminders that did not go out as planned, for the failures artifact (no
        personal data): failed, unknown (fate to be settled by reconciliation) and pending
        (left planned for the next run: transient errors, or delivery stopped early)."""
        if self.frame.empty:
            return []
        bad = self.frame[self.frame["outcome"].isin(FAILURE_OUTCOMES)]
        return [
            {
                "invoice": r.invoice_number,
                "stage": r.stage,
                "channel": r.channel,
                "outcome": r.outcome,
                "error_code": _text(r.error_code),
                "reason": _text(r.reason) or _PENDING_REASON.get(str(r.outcome), ""),
            }
            for r in bad.itertuples()
        ]

    def failures_markdown(self) -> str:
        """The failures artifact: a table of ``failures()``, or one plain sentence when there
        are none."""
        rows = self.failures()
        lines = [f"# Reminders not sent as planned, run as of {self.as_of:%Y-%m-%d %H:%M} UTC"]
        if self.stopped:
            lines += [
                "",
                f"**Delivery stopped early:** {self.stopped}. The reminders it did not "
                "reach stay planned (pending) for the next run.",
            ]
        if not rows:
            lines += [
                "",
                "No failures: every reminder due was sent, or skipped or deferred for "
                "the reason in the run summary.",
            ]
            return "\n".join(lines)
        counts = {o: sum(r["outcome"] == o for r in rows) for o in FAILURE_OUTCOMES}
        lines += [
            "",
            ", ".join(f"{o} {n}" for o, n in counts.items()),
            "",
            "| invoice | stage | channel | outcome | error code | reason |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['invoice']} | {r['stage']} | {r['channel']} | {r['outcome']} "
            f"| {r['error_code']} | {_cell(r['reason'])} |"
            for r in rows
        ]
        return "\n".join(lines)


#: What a failures row says when the ledger gave no reason.
_PENDING_REASON = {
    "pending": "left planned for the next run",
    "unknown": "claimed when a run stopped; the next run reconciles it with the provider",
}


def _text(value: Any) -> str:
    """``value`` as text; None and NaN (a missing cell of the frame) are empty."""
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _cell(text: Any) -> str:
    """``text`` safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")
