"""Outbound activities: the HubSpot notes, Salesforce tasks and Xero history notes written
for outbound events, one per (target, key)

Revision ID: 0012_outbound_activities
Revises: 0011_experiments
"""

import sqlalchemy as sa
from alembic import op

from dunning.db.models import UTCDateTime

revision = "0012_outbound_activities"
down_revision = "0011_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_activities",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("target", "key", name="uq_outbound_activity"),
    )


def downgrade() -> None:
    op.drop_table("outbound_activities")
