"""Voice reminders: customers.voice_consent and voice_opt_out, reminders.call_outcome

Revision ID: 0004_voice
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_voice"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Why server defaults: SQLite can only add a NOT NULL column that has one, and existing
    # customers have neither consented to calls nor opted out of them.
    # Plain ADD COLUMN, not batch mode: a batch rebuild drops customers, which SQLite refuses
    # while invoices reference it.
    for name in ("voice_consent", "voice_opt_out"):
        op.add_column(
            "customers", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.add_column(sa.Column("call_outcome", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.drop_column("call_outcome")
    # Plain ALTER TABLE, not batch mode: a batch rebuild drops customers, which SQLite refuses
    # while invoices reference it (see 0003).
    op.drop_column("customers", "voice_opt_out")
    op.drop_column("customers", "voice_consent")
