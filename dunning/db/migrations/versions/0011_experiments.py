"""reminders.experiment/arm/variant and experiment_promotions: A/B tests (issue 20)

Revision ID: 0011_experiments
Revises: 0010_outbound
"""

import sqlalchemy as sa
from alembic import op

from dunning.db.models import UTCDateTime

revision = "0011_experiments"
down_revision = "0010_outbound"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: existing reminders took part in no experiment. Plain ADD COLUMN (see 0006).
    op.add_column("reminders", sa.Column("experiment", sa.String(48), nullable=True))
    op.add_column("reminders", sa.Column("arm", sa.String(48), nullable=True))
    op.add_column("reminders", sa.Column("variant", sa.String(16), nullable=True))
    op.create_index("ix_reminders_experiment", "reminders", ["experiment"])
    op.create_table(
        "experiment_promotions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("experiment", sa.String(48), nullable=False, unique=True),
        sa.Column("arm", sa.String(48), nullable=False),
        sa.Column("stage", sa.String(48), nullable=False),
        sa.Column("variant", sa.String(16), nullable=True),
        sa.Column("promoted_at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("experiment_promotions")
    op.drop_index("ix_reminders_experiment", table_name="reminders")
    op.drop_column("reminders", "variant")
    op.drop_column("reminders", "arm")
    op.drop_column("reminders", "experiment")
