"""sources.toml: the file's path, validation with errors naming table and key, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from dunning.config import reload_settings
from dunning.errors import ConfigError
from dunning.sources.config import load_sources, sources_path


def _load(tmp_path: Path, body: str) -> dict:
    path = tmp_path / "sources.toml"
    path.write_text(body, encoding="utf-8")
    return load_sources(path)


def test_the_path_comes_from_dunning_sources_path_else_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DUNNING_SOURCES_PATH", raising=False)
    reload_settings()
    assert sources_path() == Path("sources.toml")
    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "x.toml"))
    reload_settings()
    assert sources_path() == tmp_path / "x.toml"
    assert load_sources() == {}  # no file: no sources


def test_a_valid_file_gives_one_config_per_table(tmp_path: Path) -> None:
    configs = _load(
        tmp_path,
        """
[sources.erp]
kind = "sql"
url_env = "ERP_DATABASE_URL"
invoices = "SELECT 1"

[sources.billing]
kind = "stripe"
max_age_minutes = 10
api_key_env = "STRIPE_KEY"
""",
    )
    assert configs["erp"].kind == "sql" and configs["erp"].max_age_minutes == 30
    assert configs["billing"].max_age_minutes == 10
    assert configs["erp"].base_dir == tmp_path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[sources.erp]\nkind = "oracle"\n', r"\[sources.erp\]: kind 'oracle' is not one of"),
        ('[sources.erp]\nkind = "sql"\nurl_env = "U"\n', "a query for invoices is required"),
        (
            '[sources.erp]\nkind = "sql"\nurl_env = "U"\ninvoices = "x"\nurll = "y"\n',
            "unknown setting 'urll' for a sql source",
        ),
        ('[sources.erp]\nkind = "sql"\ninvoices = "x"\n', "set exactly one of url, url_env"),
        (
            '[sources.erp]\nkind = "sql"\nurl = "postgresql://u:hunter2@db/erp"\ninvoices = "x"\n',
            "url contains a password; put the URL in an environment variable",
        ),
        (
            '[sources.s]\nkind = "stripe"\napi_key = "sk_live_x"\n',
            "api_key must not be written in the file; set api_key_env",
        ),
        ('[sources.s]\nkind = "stripe"\nmax_age_minutes = 0\n', "max_age_minutes must be a whole"),
        ('[sources.s]\nkind = "stripe"\nmax_age_minutes = "30"\n', "max_age_minutes must be"),
        ('[sources."Bad Name"]\nkind = "stripe"\n', "the name must be 1-32 characters"),
        ('[source.erp]\nkind = "sql"\n', "unknown top-level key"),
        ('[sources.x]\nkind = "xero"\n', "tenant_id is required"),
        ("[sources.erp\n", "not valid TOML"),
    ],
)
def test_an_invalid_file_is_an_error_naming_table_and_key(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _load(tmp_path, body)
    assert "hunter2" not in str(info.value) and "sk_live_x" not in str(info.value)


def test_secrets_come_from_the_named_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _load(tmp_path, '[sources.s]\nkind = "stripe"\napi_key_env = "MY_STRIPE_KEY"\n')["s"]
    monkeypatch.setenv("MY_STRIPE_KEY", "sk_test_123")
    reload_settings()
    assert config.secret("api_key") == "sk_test_123"
    monkeypatch.delenv("MY_STRIPE_KEY")
    reload_settings()
    with pytest.raises(ConfigError, match="MY_STRIPE_KEY, which is not set"):
        config.secret("api_key")
    plain = _load(tmp_path, '[sources.s]\nkind = "stripe"\n')["s"]
    monkeypatch.setenv("DUNNING_STRIPE_API_KEY", "sk_test_default")
    reload_settings()
    assert plain.secret("api_key", "DUNNING_STRIPE_API_KEY") == "sk_test_default"


@pytest.mark.prefect
def test_secrets_come_from_a_prefect_secret_block(tmp_path: Path, prefect_server: None) -> None:
    from prefect.blocks.system import Secret

    Secret(value="postgresql://erp@db/erp").save("erp-url", overwrite=True)
    config = _load(
        tmp_path, '[sources.erp]\nkind = "sql"\nurl_block = "erp-url"\ninvoices = "SELECT 1"\n'
    )["erp"]
    assert config.secret("url") == "postgresql://erp@db/erp"
    missing = _load(
        tmp_path,
        '[sources.erp]\nkind = "sql"\nurl_block = "no-such-block"\ninvoices = "SELECT 1"\n',
    )["erp"]
    with pytest.raises(ConfigError, match="cannot load the Prefect Secret block 'no-such-block'"):
        missing.secret("url")
