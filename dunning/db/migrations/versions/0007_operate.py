"""Operator actions: the operator_actions audit table, operator holds on invoices and
customers, promise amount, reply acknowledgement and inbox retry bookkeeping

Revision ID: 0007_operate
Revises: 0006_customers_region
"""

import sqlalchemy as sa
from alembic import op

from dunning.db.models import UTCDateTime

revision = "0007_operate"
down_revision = "0006_customers_region"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN with server defaults, not batch mode: SQLite can only add a NOT NULL
    # column that has a default, and a batch rebuild of customers/invoices is refused while
    # other tables reference them.
    false = sa.false()
    op.add_column(
        "customers",
        sa.Column("paused_by_operator", sa.Boolean(), nullable=False, server_default=false),
    )
    for name in ("paused_by_operator", "disputed_by_operator"):
        op.add_column(
            "invoices", sa.Column(name, sa.Boolean(), nullable=False, server_default=false)
        )
    op.add_column("invoices", sa.Column("promise_amount", sa.Numeric(18, 4), nullable=True))
    op.add_column("invoices", sa.Column("promise_made_on", sa.Date(), nullable=True))
    op.add_column("inbound_messages", sa.Column("acknowledged_at", UTCDateTime(), nullable=True))
    op.add_column(
        "inbound_messages", sa.Column("acknowledged_by", sa.String(length=200), nullable=True)
    )
    op.add_column(
        "webhook_inbox", sa.Column("attempts", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column("webhook_inbox", sa.Column("next_attempt_at", UTCDateTime(), nullable=True))
    op.create_table(
        "operator_actions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("flow_run_id", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
    )
    op.create_index("ix_operator_actions_customer_id", "operator_actions", ["customer_id"])
    op.create_index("ix_operator_actions_invoice_id", "operator_actions", ["invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_operator_actions_invoice_id", table_name="operator_actions")
    op.drop_index("ix_operator_actions_customer_id", table_name="operator_actions")
    op.drop_table("operator_actions")
    for table, column in (
        ("webhook_inbox", "next_attempt_at"),
        ("webhook_inbox", "attempts"),
        ("inbound_messages", "acknowledged_by"),
        ("inbound_messages", "acknowledged_at"),
        ("invoices", "promise_made_on"),
        ("invoices", "promise_amount"),
        ("invoices", "disputed_by_operator"),
        ("invoices", "paused_by_operator"),
        ("customers", "paused_by_operator"),
    ):
        op.drop_column(table, column)
