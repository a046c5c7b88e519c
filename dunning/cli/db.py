"""``dunning db upgrade``: apply the schema migrations."""

from __future__ import annotations

from dunning import db
from dunning.cli.app import console, db_app
from dunning.config import get_settings


@db_app.command("upgrade")
def upgrade(revision: str = "head") -> None:
    """Migrate the database (DUNNING_DATABASE_URL, default SQLite under .dunning/)."""
    url = get_settings().resolved_database_url
    db.upgrade(url, revision)
    console.print(f"database at {db.redact_url(url)} is at revision {revision}")
