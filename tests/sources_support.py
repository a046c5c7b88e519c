"""An "ERP" database with its own table and column names, for the SQL source's tests.

On SQLite it is a file of its own; on PostgreSQL a schema of its own in the test database
(the search_path of the ERP URL points at it), so the ERP's tables never mix with ours.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

ERP_DDL = [
    """CREATE TABLE debtors (cust_no VARCHAR(20) PRIMARY KEY, cust_name VARCHAR(100),
       mail VARCHAR(200), land VARCHAR(2), tz VARCHAR(64), lang VARCHAR(10),
       changed TIMESTAMP NOT NULL)""",
    """CREATE TABLE ar_docs (doc_no VARCHAR(20) PRIMARY KEY, cust_no VARCHAR(20), cur VARCHAR(3),
       total NUMERIC(14, 2), doc_date DATE, due DATE, state VARCHAR(10), link VARCHAR(300),
       changed TIMESTAMP NOT NULL)""",
    """CREATE TABLE ar_pay (pay_id INTEGER PRIMARY KEY, doc_no VARCHAR(20), amt NUMERIC(14, 2),
       paid_ts TIMESTAMP, changed TIMESTAMP NOT NULL)""",
    """CREATE TABLE ar_tries (doc_no VARCHAR(20), tried TIMESTAMP, ok INTEGER,
       why VARCHAR(40))""",
]

CUSTOMERS_SQL = (
    "SELECT cust_no AS customer_id, cust_name AS name, mail AS email, land AS country, "
    "tz AS timezone, lang AS locale, changed AS updated_at FROM debtors"
)
INVOICES_SQL = (
    "SELECT doc_no AS invoice_number, cust_no AS customer_id, cur AS currency, total AS amount, "
    "doc_date AS issued_on, due AS due_on, state AS status, link AS payment_link, "
    "changed AS updated_at FROM ar_docs"
)
PAYMENTS_SQL = (
    "SELECT pay_id AS source_id, doc_no AS invoice_number, amt AS amount, paid_ts AS paid_at, "
    "changed AS updated_at FROM ar_pay"
)
ATTEMPTS_SQL = (
    "SELECT doc_no AS invoice_number, tried AS attempted_at, "
    "CASE WHEN ok = 1 THEN 'succeeded' ELSE 'failed' END AS outcome, why AS failure_code "
    "FROM ar_tries"
)


@contextmanager
def erp_database(db_url: str, tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    """The URL of a fresh ERP database on ``db_url``'s backend, and an engine to fill it."""
    if db_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'erp.db'}"
        engine = create_engine(url)
        with engine.begin() as conn:
            for ddl in ERP_DDL:
                conn.execute(text(ddl))
        try:
            yield url, engine
        finally:
            engine.dispose()
        return
    schema = f"erp_{uuid.uuid4().hex[:8]}"
    admin = create_engine(db_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = make_url(db_url).update_query_dict({"options": f"-csearch_path={schema}"})
    erp_url = url.render_as_string(hide_password=False)
    engine = create_engine(erp_url)
    with engine.begin() as conn:
        for ddl in ERP_DDL:
            conn.execute(text(ddl))
    try:
        yield erp_url, engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def erp_exec(engine: Engine, sql: str, **params: Any) -> None:
    """Nothing; runs one statement in the ERP."""
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def write_sources(path: Path, body: str) -> Path:
    """``path`` after writing ``body`` to it (a sources.toml)."""
    path.write_text(body, encoding="utf-8")
    return path


def sql_source_toml(name: str = "erp", attempts: bool = True) -> str:
    """A [sources.NAME] table for the ERP, its URL in ERP_DATABASE_URL."""
    lines = [
        f"[sources.{name}]",
        'kind = "sql"',
        'url_env = "ERP_DATABASE_URL"',
        "max_age_minutes = 30",
        f"customers = {CUSTOMERS_SQL!r}",
        f"invoices = {INVOICES_SQL!r}",
        f"payments = {PAYMENTS_SQL!r}",
    ]
    if attempts:
        lines.append(f"payment_attempts = {ATTEMPTS_SQL!r}")
    return "\n".join(lines) + "\n"
