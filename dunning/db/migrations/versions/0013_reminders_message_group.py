"""Reminders travelling in one message per customer: reminders.message_group

Revision ID: 0013_reminders_message_group
Revises: 0012_outbound_activities
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_reminders_message_group"
down_revision = "0012_outbound_activities"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.add_column(sa.Column("message_group", sa.Integer(), nullable=True))
        batch_op.create_index("ix_reminders_message_group", ["message_group"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.drop_index("ix_reminders_message_group")
        batch_op.drop_column("message_group")
