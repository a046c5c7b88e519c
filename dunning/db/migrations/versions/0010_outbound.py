"""Outbound events: the outbox, subscribers and per-subscriber deliveries

Revision ID: 0010_outbound
Revises: 0009_ladder_escalation
"""

import sqlalchemy as sa
from alembic import op

from dunning.db.models import UTCDateTime

revision = "0010_outbound"
down_revision = "0009_ladder_escalation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(length=40), nullable=False, unique=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_outbound_events_occurred_at", "outbound_events", ["occurred_at"])
    op.create_table(
        "outbound_subscribers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "outbound_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            sa.Integer(),
            sa.ForeignKey("outbound_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "subscriber_id",
            sa.Integer(),
            sa.ForeignKey("outbound_subscribers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("event_id", "subscriber_id", name="uq_outbound_delivery"),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'dead')", name="ck_outbound_delivery_status"
        ),
    )
    op.create_index(
        "ix_outbound_deliveries_due", "outbound_deliveries", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_outbound_deliveries_due", table_name="outbound_deliveries")
    op.drop_table("outbound_deliveries")
    op.drop_table("outbound_subscribers")
    op.drop_index("ix_outbound_events_occurred_at", table_name="outbound_events")
    op.drop_table("outbound_events")
