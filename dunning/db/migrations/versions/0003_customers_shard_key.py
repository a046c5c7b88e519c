"""customers.shard_key (crc32 of customer_id) and reminder_runs.outcomes, for sharded runs

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from dunning.sharding import shard_key

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_PAGE = 10_000


def upgrade() -> None:
    # Why NOT NULL with a server default of 0 first: SQLite can only add a NOT NULL column that
    # has a default, and making a column NOT NULL later means rebuilding the customers table,
    # which SQLite refuses while invoices reference it (foreign keys are on).
    with op.batch_alter_table("customers") as batch_op:
        batch_op.add_column(
            sa.Column("shard_key", sa.BigInteger(), nullable=False, server_default="0")
        )
    _backfill()
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # Without a default, an insert that bypasses the model's default fails loudly instead
        # of piling customers into shard 0. (SQLite cannot drop a default without a rebuild.)
        op.alter_column("customers", "shard_key", server_default=None)
    with op.batch_alter_table("customers") as batch_op:
        batch_op.create_index("ix_customers_shard_key", ["shard_key"], unique=False)
    with op.batch_alter_table("reminder_runs") as batch_op:
        batch_op.add_column(sa.Column("outcomes", sa.JSON(), nullable=True))


def _backfill() -> None:
    """Set every existing customer's shard key, a page of customer ids at a time."""
    bind = op.get_bind()
    customers = sa.table(
        "customers", sa.column("customer_id", sa.String), sa.column("shard_key", sa.BigInteger)
    )
    update = (
        sa.update(customers)
        .where(customers.c.customer_id == sa.bindparam("cid"))
        .values(shard_key=sa.bindparam("key"))
    )
    last = None
    while True:
        page = sa.select(customers.c.customer_id).order_by(customers.c.customer_id).limit(_PAGE)
        if last is not None:
            page = page.where(customers.c.customer_id > last)
        ids = [cid for (cid,) in bind.execute(page)]
        if not ids:
            return
        bind.execute(update, [{"cid": cid, "key": shard_key(cid)} for cid in ids])
        last = ids[-1]


def downgrade() -> None:
    with op.batch_alter_table("reminder_runs") as batch_op:
        batch_op.drop_column("outcomes")
    # Plain ALTER TABLE, not batch mode: a batch rebuild drops customers, which SQLite refuses
    # while invoices reference it. SQLite 3.35+ drops a column in place.
    op.drop_index("ix_customers_shard_key", table_name="customers")
    op.drop_column("customers", "shard_key")
