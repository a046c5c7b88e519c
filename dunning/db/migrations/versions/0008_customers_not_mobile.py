"""customers.not_mobile: the phone cannot receive SMS (a fixed line, or an extension)

Revision ID: 0008_customers_not_mobile
Revises: 0007_operate
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_customers_not_mobile"
down_revision = "0007_operate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # False for existing rows: they were imported before numbers were typed; the next import
    # of the customer sets it. Plain ADD COLUMN (see 0006: a batch rebuild of customers fails).
    op.add_column("customers", sa.Column("not_mobile", sa.Boolean(), nullable=False,
                                         server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("customers", "not_mobile")
