"""customer_segments: the segmentation snapshot (features and segment per customer, issue 19)

Revision ID: 0014_customer_segments
Revises: 0013_reminders_message_group
"""

import sqlalchemy as sa
from alembic import op

from dunning.db.models import UTCDateTime

revision = "0014_customer_segments"
down_revision = "0013_reminders_message_group"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_segments",
        sa.Column(
            "customer_id",
            sa.String(64),
            sa.ForeignKey("customers.customer_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("segment", sa.String(64), nullable=False),
        sa.Column("previous_segment", sa.String(64), nullable=True),
        sa.Column("on_time_share", sa.Float(), nullable=True),
        sa.Column("mean_days_late", sa.Float(), nullable=True),
        sa.Column("p90_days_late", sa.Float(), nullable=True),
        sa.Column("failed_attempts_90d", sa.Integer(), nullable=False),
        sa.Column("open_invoices", sa.Integer(), nullable=False),
        sa.Column("oldest_open_days_overdue", sa.Integer(), nullable=False),
        sa.Column("tenure_days", sa.Integer(), nullable=False),
        sa.Column("invoice_count", sa.Integer(), nullable=False),
        sa.Column("settled_count", sa.Integer(), nullable=False),
        sa.Column("large_overdue", sa.Boolean(), nullable=False),
        sa.Column("as_of", UTCDateTime(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.Column("policy_fingerprint", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("customer_segments")
