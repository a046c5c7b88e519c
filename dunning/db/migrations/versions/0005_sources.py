"""Sources: customers/invoices keep their source and source id; per-source sync state and a
quarantine for records that failed validation

Revision ID: 0005_sources
Revises: 0004_voice
"""

import sqlalchemy as sa
from alembic import op

import dunning.db.models

revision = "0005_sources"
down_revision = "0004_voice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rows written before sources existed came from CSV/Excel imports or the seed: they belong
    # to the `files` source (never stale unless a files source says otherwise in sources.toml).
    for table in ("customers", "invoices"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column("source", sa.String(64), nullable=False, server_default="files")
            )
            batch_op.add_column(sa.Column("source_id", sa.String(200), nullable=True))
            batch_op.create_index(f"ix_{table}_source", ["source"], unique=False)
    op.create_table(
        "source_state",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_success_at", dunning.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", dunning.db.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=True),
    )
    op.create_table(
        "source_quarantine",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(32), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("first_seen_at", dunning.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", dunning.db.models.UTCDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "record_type", "source_id", name="uq_source_quarantine"),
    )


def downgrade() -> None:
    op.drop_table("source_quarantine")
    op.drop_table("source_state")
    for table in ("invoices", "customers"):
        op.drop_index(f"ix_{table}_source", table_name=table)
        op.drop_column(table, "source_id")
        op.drop_column(table, "source")
