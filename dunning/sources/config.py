"""sources.toml: one ``[sources.NAME]`` table per source, validated with clear errors.

The file is found at ``DUNNING_SOURCES_PATH`` (default ``sources.toml`` in the working
directory). Secrets never live in it: a setting ending in ``_env`` names the environment
variable that holds the value, one ending in ``_block`` names a Prefect Secret block.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dunning.config import get_settings
from dunning.errors import ConfigError

KINDS = ("stripe", "xero", "sql", "files")
DEFAULT_MAX_AGE_MINUTES = 30
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COMMON = {"kind", "max_age_minutes"}
_QUERIES = ("customers", "invoices", "payments", "payment_attempts")
#: Settings each kind accepts besides kind and max_age_minutes; secrets come as NAME_env or
#: NAME_block, never NAME itself.
_ALLOWED: dict[str, set[str]] = {
    "sql": {"url", "url_env", "url_block", *_QUERIES},
    "files": {*_QUERIES},
    "stripe": {
        "api_key_env",
        "api_key_block",
        "api_base",
        "default_country",
        "default_timezone",
        "default_locale",
    },
    "xero": {
        "tenant_id",
        "client_id_env",
        "client_id_block",
        "client_secret_env",
        "client_secret_block",
        "refresh_token_block",
        "api_base",
        "identity_base",
        "payment_links",
        "history_notes",
        "default_country",
        "default_timezone",
        "default_locale",
    },
}
_SECRETS = {"api_key", "client_id", "client_secret", "refresh_token", "password", "token"}


def sources_path() -> Path:
    """The sources file in force: ``DUNNING_SOURCES_PATH``, else ./sources.toml."""
    return get_settings().integrations.sources_file


@dataclass(frozen=True)
class SourceConfig:
    """One ``[sources.NAME]`` table: its name, kind, maximum age and kind-specific settings."""

    name: str
    kind: str
    max_age_minutes: int = DEFAULT_MAX_AGE_MINUTES
    settings: dict[str, Any] = field(default_factory=dict)
    #: The directory of sources.toml: relative file paths are read from there.
    base_dir: Path = Path(".")

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default`` when absent."""
        return self.settings.get(key, default)

    def secret(self, key: str, default_env: str | None = None) -> str | None:
        """The secret ``key`` from the variable ``KEY_env`` names (or ``default_env``), or
        from the Prefect Secret block ``KEY_block`` names; None when neither is configured.

        Raises ConfigError when the named variable is unset or the block cannot be loaded.
        """
        env = self.settings.get(f"{key}_env")
        block = self.settings.get(f"{key}_block")
        if block:
            return load_secret_block(str(block), f"[sources.{self.name}] {key}_block")
        name = env or default_env
        if not name:
            return None
        value = get_settings().integrations.variable(str(name))
        if not value:
            if env:
                raise ConfigError(
                    f"[sources.{self.name}] {key}_env names the environment variable {name}, "
                    f"which is not set; export {name} before running"
                )
            return None
        return value


def load_secret_block(block: str, where: str) -> str:
    """The value of the Prefect Secret block named ``block``; ConfigError when it cannot be
    loaded (``where`` names the setting in the message)."""
    try:
        from prefect.blocks.system import Secret

        return str(Secret.load(block).get())  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001 - any failure is the same advice to the user
        raise ConfigError(
            f"{where}: cannot load the Prefect Secret block {block!r} ({type(exc).__name__}); "
            "create it in the Prefect UI (Blocks -> Secret) or with Secret(value=...).save()"
        ) from None


def load_sources(path: Path | None = None) -> dict[str, SourceConfig]:
    """The sources configured in ``path`` (default ``sources_path()``), by name.

    A missing file means no sources (every invoice then comes from imports). Raises
    ConfigError naming the file, the table and the key for anything invalid.
    """
    path = path or sources_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    unknown = sorted(set(data) - {"sources"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {', '.join(unknown)}; "
            "put each source in a [sources.NAME] table"
        )
    tables = data.get("sources", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{path}: 'sources' must be tables: [sources.NAME]")
    return {name: _parse(path, name, table) for name, table in tables.items()}


def _parse(path: Path, name: str, table: Any) -> SourceConfig:
    where = f"{path}: [sources.{name}]"
    if not _NAME.match(name):
        raise ConfigError(
            f"{where}: the name must be 1-32 characters of a-z, 0-9, _ and -, "
            "starting with a letter or digit"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table of settings")
    kind = table.get("kind")
    if kind not in KINDS:
        raise ConfigError(
            f'{where}: kind {kind!r} is not one of {", ".join(KINDS)}; add e.g. kind = "sql"'
        )
    max_age = table.get("max_age_minutes", DEFAULT_MAX_AGE_MINUTES)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 1:
        raise ConfigError(
            f"{where}: max_age_minutes must be a whole number of minutes, 1 or "
            f"more (got {max_age!r})"
        )
    settings = {k: v for k, v in table.items() if k not in _COMMON}
    for key, value in settings.items():
        if key in _SECRETS:
            raise ConfigError(
                f"{where}: {key} must not be written in the file; set "
                f"{key}_env to the environment variable that holds it (or "
                f"{key}_block to a Prefect Secret block)"
            )
        if key not in _ALLOWED[kind]:
            raise ConfigError(
                f"{where}: unknown setting {key!r} for a {kind} source; allowed: "
                f"{', '.join(sorted(_ALLOWED[kind] | _COMMON))}"
            )
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: {key} must be a non-empty string")
    _check_kind(where, kind, settings)
    return SourceConfig(name, kind, max_age, settings, path.parent)


def _check_kind(where: str, kind: str, settings: dict[str, Any]) -> None:
    if kind in ("sql", "files") and "invoices" not in settings:
        what = "query" if kind == "sql" else "file"
        raise ConfigError(
            f"{where}: a {what} for invoices is required (invoices = ...); "
            "customers, payments and payment_attempts are optional"
        )
    if kind == "sql":
        given = [k for k in ("url", "url_env", "url_block") if k in settings]
        if len(given) != 1:
            raise ConfigError(
                f"{where}: set exactly one of url, url_env or url_block "
                f"(got {', '.join(given) or 'none'})"
            )
        if "url" in settings and _has_password(settings["url"]):
            raise ConfigError(
                f"{where}: url contains a password; put the URL in an "
                "environment variable and name it with url_env"
            )
    if kind == "xero" and "tenant_id" not in settings:
        raise ConfigError(f"{where}: tenant_id is required (the Xero organisation's id)")
    if kind == "xero" and settings.get("payment_links", "online_invoice") != "online_invoice":
        raise ConfigError(
            f'{where}: payment_links must be "online_invoice" (fetch each open '
            "invoice's OnlineInvoiceUrl) or left out (no payment link)"
        )
    if kind == "xero" and settings.get("history_notes", "on") not in ("on", "off"):
        raise ConfigError(
            f'{where}: history_notes must be "on" (the default: a history note on the invoice '
            'per sent reminder, docs/outbound.md) or "off"'
        )


def _has_password(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return bool(make_url(url).password)
    except ArgumentError:
        return False
