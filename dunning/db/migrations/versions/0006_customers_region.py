"""customers.region: the ISO 3166-2 subdivision (AU-NSW) whose public holidays apply

Revision ID: 0006_customers_region
Revises: 0005_sources
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_customers_region"
down_revision = "0005_sources"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no backfill: a customer without a region takes the one its time zone names
    # (dunning.regions.default_region) when the planner computes the send window.
    # Plain ADD COLUMN, not batch mode: a batch rebuild drops customers, which SQLite refuses
    # while invoices reference it (see 0003).
    op.add_column("customers", sa.Column("region", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("customers", "region")
