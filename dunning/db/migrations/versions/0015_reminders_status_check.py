"""reminders.status may hold only a ReminderStatus value: CHECK ck_reminders_status

Revision ID: 0015_reminders_status_check
Revises: 0014_customer_segments

The list is written out here (a migration is a frozen record of the schema at its time);
tests/test_reminder_status_check.py fails when it no longer equals dunning.core.status's
ReminderStatus, so a new status comes with a migration of its own.
"""

from alembic import op

revision = "0015_reminders_status_check"
down_revision = "0014_customer_segments"
branch_labels = None
depends_on = None

NAME = "ck_reminders_status"
STATUSES = (
    "planned",
    "claimed",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "replied",
    "bounced",
    "undelivered",
    "failed_permanent",
    "skipped",
    "unknown",
)


def condition(statuses: tuple[str, ...] = STATUSES) -> str:
    """The CHECK's SQL: ``status IN ('planned', ...)``."""
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


def upgrade() -> None:
    # batch_alter_table: SQLite cannot add a constraint in place (the table is copied);
    # PostgreSQL gets an ALTER TABLE ... ADD CONSTRAINT.
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.create_check_constraint(NAME, condition())


def downgrade() -> None:
    with op.batch_alter_table("reminders") as batch_op:
        batch_op.drop_constraint(NAME, type_="check")
