"""reminders.planned_for: the instant the planning run acted as of

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

import dunning.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.add_column(
            sa.Column("planned_for", dunning.db.models.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.drop_column("planned_for")
