"""invoices.escalated_at: when the ladder was exhausted and the invoice handed to a person

Revision ID: 0009_ladder_escalation
Revises: 0008_customers_not_mobile
"""

import sqlalchemy as sa
from alembic import op

import dunning.db.models

revision = "0009_ladder_escalation"
down_revision = "0008_customers_not_mobile"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (nullable, no default): SQLite adds it in place, no table rebuild.
    op.add_column(
        "invoices",
        sa.Column("escalated_at", dunning.db.models.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("invoices", "escalated_at")
