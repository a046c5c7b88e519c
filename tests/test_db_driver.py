"""A database URL whose driver is not installed is one clear error naming the fix (psycopg is
the `postgres` extra: a plain `pip install dunning` has SQLite only)."""

from __future__ import annotations

import pytest

from dunning.db import make_engine
from dunning.errors import DatabaseUnavailable


def test_a_missing_driver_names_the_setting_and_the_extra() -> None:
    with pytest.raises(DatabaseUnavailable) as info:
        make_engine("mysql+pymysql://user@db.example/dunning")  # pymysql is not installed
    message = str(info.value)
    assert "DUNNING_DATABASE_URL" in message and "'pymysql'" in message
    assert "pip install 'dunning[postgres]'" in message
