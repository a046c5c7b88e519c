"""The settings root keeps every environment variable operators use: same name, same field.

``OLD_VARIABLES`` was generated from the eight BaseSettings classes as they were before the
root existed (dunning/config.py Settings, channels/settings.py ChannelSettings,
webhooks/settings.py WebhookSettings, privacy.py PrivacySettings, outbound/subscribers.py
OutboundSettings, timeouts.py FlowTimeouts, approval.py ApprovalSettings, alerts.py
AlertSettings): variable -> (section of the root, "" for the root itself; field). Every name
documented in docs/*.md and the README is either one of them or named in ``NOT_SETTINGS``.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import SecretStr
from pydantic_settings import BaseSettings

from dunning.config import SECTIONS, Settings, env_names, get_settings, reload_settings
from dunning.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

OLD_VARIABLES: list[tuple[str, str, str]] = [
    # Settings (dunning.config)
    ("DUNNING_HOME", "", "home"),
    ("DUNNING_DATABASE_URL", "", "database_url"),
    ("DUNNING_POLICY_PATH", "", "policy_path"),
    ("DUNNING_COMPANY_NAME", "", "company_name"),
    ("DUNNING_SUPPORT_CONTACT", "", "support_contact"),
    ("DUNNING_LEASE_SECONDS", "", "lease_seconds"),
    # ChannelSettings (dunning.channels.settings)
    ("DUNNING_EMAIL_PROVIDER", "channels", "email_provider"),
    ("DUNNING_SMS_PROVIDER", "channels", "sms_provider"),
    ("DUNNING_PROVIDER_TIMEOUT_SECONDS", "channels", "provider_timeout_seconds"),
    ("DUNNING_SEND_CONCURRENCY", "channels", "send_concurrency"),
    ("DUNNING_EMAIL_RATE_LIMIT", "channels", "email_rate_limit"),
    ("DUNNING_SMS_RATE_LIMIT", "channels", "sms_rate_limit"),
    ("DUNNING_VOICE_PROVIDER", "channels", "voice_provider"),
    ("DUNNING_VOICE_RATE_LIMIT", "channels", "voice_rate_limit"),
    ("DUNNING_SENDGRID_API_KEY", "channels", "sendgrid_api_key"),
    ("SENDGRID_API_KEY", "channels", "sendgrid_api_key"),
    ("DUNNING_SENDGRID_BASE_URL", "channels", "sendgrid_base_url"),
    ("DUNNING_SENDGRID_BLOCK", "channels", "sendgrid_block"),
    ("DUNNING_TWILIO_ACCOUNT_SID", "channels", "twilio_account_sid"),
    ("TWILIO_ACCOUNT_SID", "channels", "twilio_account_sid"),
    ("DUNNING_TWILIO_AUTH_TOKEN", "channels", "twilio_auth_token"),
    ("TWILIO_AUTH_TOKEN", "channels", "twilio_auth_token"),
    ("DUNNING_TWILIO_FROM_NUMBER", "channels", "twilio_from_number"),
    ("TWILIO_FROM_NUMBER", "channels", "twilio_from_number"),
    ("DUNNING_TWILIO_MESSAGING_SERVICE_SID", "channels", "twilio_messaging_service_sid"),
    ("DUNNING_TWILIO_BASE_URL", "channels", "twilio_base_url"),
    ("DUNNING_TWILIO_STATUS_CALLBACK_URL", "channels", "twilio_status_callback_url"),
    ("DUNNING_TWILIO_BLOCK", "channels", "twilio_block"),
    ("DUNNING_VOICE_FROM_NUMBER", "channels", "voice_from_number"),
    ("DUNNING_VOICE_SUPPORT_NUMBER", "channels", "voice_support_number"),
    ("DUNNING_VOICE_MACHINE_DETECTION", "channels", "voice_machine_detection"),
    ("DUNNING_VOICE_RING_TIMEOUT_SECONDS", "channels", "voice_ring_timeout_seconds"),
    ("DUNNING_WEBHOOK_PUBLIC_URL", "channels", "webhook_public_url"),
    ("DUNNING_SMTP_HOST", "channels", "smtp_host"),
    ("DUNNING_SMTP_PORT", "channels", "smtp_port"),
    ("DUNNING_SMTP_USERNAME", "channels", "smtp_username"),
    ("DUNNING_SMTP_PASSWORD", "channels", "smtp_password"),
    ("DUNNING_SMTP_STARTTLS", "channels", "smtp_starttls"),
    ("DUNNING_SMTP_SSL", "channels", "smtp_ssl"),
    ("DUNNING_SMTP_BLOCK", "channels", "smtp_block"),
    ("DUNNING_EMAIL_FROM", "channels", "email_from"),
    ("DUNNING_EMAIL_FROM_NAME", "channels", "email_from_name"),
    ("DUNNING_EMAIL_REPLY_TO", "channels", "email_reply_to"),
    ("DUNNING_POSTAL_ADDRESS", "channels", "postal_address"),
    ("DUNNING_UNSUBSCRIBE_BASE_URL", "channels", "unsubscribe_base_url"),
    ("DUNNING_UNSUBSCRIBE_MAILTO", "channels", "unsubscribe_mailto"),
    ("DUNNING_UNSUBSCRIBE_SECRET", "channels", "unsubscribe_secret"),
    ("DUNNING_SMS_MAX_SEGMENTS", "channels", "sms_max_segments"),
    ("DUNNING_SMS_OPT_OUT_HINT", "channels", "sms_opt_out_hint"),
    ("DUNNING_TEMPLATES_DIR", "channels", "templates_dir"),
    ("DUNNING_EMAIL_LOGO_URL", "channels", "email_logo_url"),
    ("DUNNING_EMAIL_BRAND_COLOR", "channels", "email_brand_color"),
    # WebhookSettings (dunning.webhooks.settings)
    ("DUNNING_WEBHOOK_PUBLIC_URL", "webhooks", "webhook_public_url"),
    ("DUNNING_SENDGRID_WEBHOOK_PUBLIC_KEY", "webhooks", "sendgrid_webhook_public_key"),
    ("DUNNING_STRIPE_WEBHOOK_SECRET", "webhooks", "stripe_webhook_secret"),
    ("DUNNING_WEBHOOK_TOLERANCE_SECONDS", "webhooks", "webhook_tolerance_seconds"),
    ("DUNNING_WEBHOOK_MAX_BODY_BYTES", "webhooks", "webhook_max_body_bytes"),
    ("DUNNING_WEBHOOK_EVENT_SECONDS", "webhooks", "webhook_event_seconds"),
    ("DUNNING_REPLY_PAUSE_DAYS", "webhooks", "reply_pause_days"),
    ("DUNNING_TWILIO_POLL_AGE_MINUTES", "webhooks", "twilio_poll_age_minutes"),
    ("DUNNING_INBOX_MAX_ATTEMPTS", "webhooks", "inbox_max_attempts"),
    ("DUNNING_INBOX_RETRY_BASE_SECONDS", "webhooks", "inbox_retry_base_seconds"),
    # PrivacySettings (dunning.privacy)
    ("DUNNING_RETENTION_BODY_DAYS", "privacy", "retention_body_days"),
    ("DUNNING_RETENTION_PAYLOAD_DAYS", "privacy", "retention_payload_days"),
    # OutboundSettings (dunning.outbound.subscribers)
    ("DUNNING_OUTBOUND_WEBHOOK_URL", "outbound", "webhook_url"),
    ("DUNNING_OUTBOUND_WEBHOOK_SECRET", "outbound", "webhook_secret"),
    ("DUNNING_OUTBOUND_MAX_ATTEMPTS", "outbound", "max_attempts"),
    ("DUNNING_OUTBOUND_BACKOFF_SECONDS", "outbound", "backoff_seconds"),
    ("DUNNING_OUTBOUND_TIMEOUT_SECONDS", "outbound", "timeout_seconds"),
    # FlowTimeouts (dunning.timeouts)
    ("DUNNING_FLOW_TIMEOUT_PAYMENT_REMINDERS", "timeouts", "payment_reminders"),
    ("DUNNING_FLOW_TIMEOUT_REMINDERS_DRY_RUN", "timeouts", "reminders_dry_run"),
    ("DUNNING_FLOW_TIMEOUT_TRACK_RESPONSES", "timeouts", "track_responses"),
    ("DUNNING_FLOW_TIMEOUT_OPERATOR_ACTION", "timeouts", "operator_action"),
    ("DUNNING_FLOW_TIMEOUT_RETENTION", "timeouts", "retention"),
    ("DUNNING_FLOW_TIMEOUT_OUTBOUND_EVENTS", "timeouts", "outbound_events"),
    ("DUNNING_FLOW_TIMEOUT_SYNC_SOURCES", "timeouts", "sync_sources"),
    ("DUNNING_FLOW_TIMEOUT_COLLECTIONS_REPORT", "timeouts", "collections_report"),
    # ApprovalSettings (dunning.approval)
    ("DUNNING_APPROVAL_ENABLED", "approval", "enabled"),
    ("DUNNING_APPROVAL_FINAL_NOTICE", "approval", "final_notice"),
    ("DUNNING_APPROVAL_MAX_MESSAGES", "approval", "max_messages"),
    ("DUNNING_APPROVAL_TIMEOUT_SECONDS", "approval", "timeout_seconds"),
    # AlertSettings (dunning.alerts)
    ("DUNNING_ALERT_FAILURE_RATE", "alerts", "failure_rate"),
    ("DUNNING_ALERT_BLOCK", "alerts", "block"),
    ("DUNNING_ALERT_WEBHOOK_URL", "alerts", "webhook_url"),
    ("DUNNING_ALERT_ZOMBIE_SECONDS", "alerts", "zombie_seconds"),
    ("DUNNING_ALERT_PENDING_SECONDS", "alerts", "pending_seconds"),
    ("DUNNING_ALERT_SLOT_WAIT_SECONDS", "alerts", "slot_wait_seconds"),
    ("DUNNING_ALERT_NO_COMPLETED_SECONDS", "alerts", "no_completed_seconds"),
]

#: Variables the integrations read straight from os.environ before (sources/config.py,
#: sources/stripe.py, sources/xero.py, outbound/activities.py), now the ``integrations``
#: section of the root: same names.
MOVED_VARIABLES: list[tuple[str, str, str]] = [
    ("DUNNING_SOURCES_PATH", "integrations", "sources_path"),
    ("DUNNING_CRM_PATH", "integrations", "crm_path"),
    ("DUNNING_STRIPE_API_BASE", "integrations", "stripe_api_base"),
    ("DUNNING_STRIPE_API_KEY", "integrations", "stripe_api_key"),
    ("DUNNING_XERO_API_BASE", "integrations", "xero_api_base"),
    ("DUNNING_XERO_IDENTITY_BASE", "integrations", "xero_identity_base"),
    ("DUNNING_XERO_CLIENT_ID", "integrations", "xero_client_id"),
    ("DUNNING_XERO_CLIENT_SECRET", "integrations", "xero_client_secret"),
    ("DUNNING_HUBSPOT_ACCESS_TOKEN", "integrations", "hubspot_access_token"),
    ("DUNNING_HUBSPOT_CLIENT_ID", "integrations", "hubspot_client_id"),
    ("DUNNING_HUBSPOT_CLIENT_SECRET", "integrations", "hubspot_client_secret"),
    ("DUNNING_HUBSPOT_REFRESH_TOKEN", "integrations", "hubspot_refresh_token"),
    ("DUNNING_SALESFORCE_USERNAME", "integrations", "salesforce_username"),
    ("DUNNING_SALESFORCE_PASSWORD", "integrations", "salesforce_password"),
    ("DUNNING_SALESFORCE_SECURITY_TOKEN", "integrations", "salesforce_security_token"),
    ("DUNNING_SALESFORCE_CONSUMER_KEY", "integrations", "salesforce_consumer_key"),
    ("DUNNING_SALESFORCE_CONSUMER_SECRET", "integrations", "salesforce_consumer_secret"),
]
OLD_VARIABLES += MOVED_VARIABLES
#: Settings added since the root (the segmentation snapshot, composing processes).
OLD_VARIABLES += [
    ("DUNNING_SEGMENT_SNAPSHOT_MAX_AGE_HOURS", "", "segment_snapshot_max_age_hours"),
    ("DUNNING_FLOW_TIMEOUT_SEGMENT_CUSTOMERS", "timeouts", "segment_customers"),
    ("DUNNING_COMPOSE_PROCESSES", "channels", "compose_processes"),
]

#: Documented variables that are not settings of the root, and who reads them.
NOT_SETTINGS = {
    "DUNNING_TEST_DATABASE_URL": "the test suite (tests/conftest.py)",
    "DUNNING_GIT_REPOSITORY": "deployment tooling (deployments/)",
    "DUNNING_STRIPE_FIXTURES": "the Stripe fake (dunning.devtools)",
    "DUNNING_CRASH_AT": "fault injection in tests (dunning.faultpoint)",
}
NAME = re.compile(r"\b(?:DUNNING|TWILIO|SENDGRID)_[A-Z0-9_]+")


def _section(root: Settings, section: str) -> BaseSettings:
    return root if not section else getattr(root, section)


def _cls(section: str) -> type[BaseSettings]:
    return Settings if not section else SECTIONS[section]


def _sample(cls: type[BaseSettings], field: str) -> tuple[str, Any]:
    """A valid value for ``field`` other than its default: (environment text, parsed value)."""
    info = cls.model_fields[field]
    annotation = info.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    kind = args[0] if args and typing.get_origin(annotation) is not Literal else annotation
    bounds = {type(m).__name__: m for m in info.metadata}
    if field == "email_brand_color":
        return "#ABCDEF", "#abcdef"
    if field == "email_logo_url":
        return "https://cdn.example.com/logo.png", "https://cdn.example.com/logo.png"
    if typing.get_origin(kind) is Literal:
        choice = next(c for c in typing.get_args(kind) if c != info.default)
        return str(choice), choice
    if kind is bool:
        return str(not info.default).lower(), not info.default
    if kind in (int, float):
        step = 1 if kind is int else 0.5
        # An unset default (None: worked out at run time) counts from the lowest allowed value.
        base = (
            info.default if info.default is not None else bounds["Ge"].ge if "Ge" in bounds else 0
        )
        value = base + step
        if "Le" in bounds and value > bounds["Le"].le:
            value = base - step
        return str(value), value
    if kind is SecretStr:
        return "s3cret-value", "s3cret-value"
    if kind is Path:
        return "/srv/dunning/x", Path("/srv/dunning/x")
    return f"value-of-{field}", f"value-of-{field}"


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, _, _ in OLD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(("variable", "section", "field"), OLD_VARIABLES)
def test_every_variable_reaches_the_same_field_as_before(
    monkeypatch: pytest.MonkeyPatch, variable: str, section: str, field: str
) -> None:
    _clear(monkeypatch)
    text, expected = _sample(_cls(section), field)
    monkeypatch.setenv(variable, text)
    reload_settings()
    value = getattr(_section(get_settings(), section), field)
    if isinstance(value, SecretStr):
        assert text not in repr(value) and text not in repr(_section(get_settings(), section))
        value = value.get_secret_value()
    assert value == expected
    assert variable in env_names(_cls(section))[field]


def test_the_root_reads_no_variable_it_did_not_read_before() -> None:
    now = {
        (name, section, field)
        for section in ["", *SECTIONS]
        for field, names in env_names(_cls(section)).items()
        for name in names
    }
    assert now == set(OLD_VARIABLES)


def test_every_documented_variable_is_a_setting_or_named_as_read_elsewhere() -> None:
    known = {variable for variable, _, _ in OLD_VARIABLES}
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    documented = {name for page in pages for name in NAME.findall(page.read_text())}
    assert "DUNNING_HOME" in documented  # the scan works
    for name in sorted(documented):
        if name.endswith("_"):  # a family, as in DUNNING_ALERT_* or DUNNING_FLOW_TIMEOUT_<FLOW>
            assert any(k.startswith(name) for k in known | set(NOT_SETTINGS)), name
        else:
            assert name in known or name in NOT_SETTINGS, f"{name} is documented but read nowhere"


def test_the_root_is_built_once_and_reload_reads_the_environment_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = get_settings()
    assert get_settings() is first and first.channels is first.channels
    monkeypatch.setenv("DUNNING_COMPANY_NAME", "Changed Ltd")
    monkeypatch.setenv("DUNNING_SMS_PROVIDER", "twilio")
    assert get_settings().company_name != "Changed Ltd"  # a snapshot until reloaded
    reload_settings()
    assert get_settings() is not first
    assert get_settings().company_name == "Changed Ltd"
    assert get_settings().channels.sms_provider == "twilio"


def test_an_invalid_value_names_the_variable_and_what_is_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DUNNING_ALERT_ZOMBIE_SECONDS", "20")
    reload_settings()
    with pytest.raises(ConfigError) as alerts:
        get_settings().alerts
    assert "DUNNING_ALERT_ZOMBIE_SECONDS='20'" in str(alerts.value)
    assert "greater than or equal to 60" in str(alerts.value)


def test_a_bad_value_of_one_section_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DUNNING_SMTP_PORT", "not-a-port")
    reload_settings()
    assert get_settings().resolved_database_url
    assert get_settings().webhooks.reply_pause_days == 14
    with pytest.raises(ConfigError, match="DUNNING_SMTP_PORT='not-a-port': Input should be"):
        get_settings().channels


def test_a_secret_is_never_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DUNNING_OUTBOUND_WEBHOOK_SECRET", "whsec_" + "x" * 40)
    monkeypatch.setenv("DUNNING_OUTBOUND_MAX_ATTEMPTS", "0")
    reload_settings()
    with pytest.raises(ConfigError) as error:
        get_settings().outbound
    assert "DUNNING_OUTBOUND_MAX_ATTEMPTS='0'" in str(error.value)
    assert "x" * 40 not in str(error.value)


def test_the_fallback_name_of_a_secret_is_named_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "tok-never-shown")
    reload_settings()
    token = get_settings().channels.twilio_auth_token
    assert token is not None and token.get_secret_value() == "tok-never-shown"
    assert "tok-never-shown" not in repr(get_settings().channels)
    monkeypatch.setenv("DUNNING_VOICE_RING_TIMEOUT_SECONDS", "1")
    reload_settings()
    with pytest.raises(ConfigError) as error:
        get_settings().channels
    assert "DUNNING_VOICE_RING_TIMEOUT_SECONDS='1'" in str(error.value)
    assert "tok-never-shown" not in str(error.value)


def test_a_change_of_settings_gives_new_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    from dunning.tasks.deliver import channel_for

    email = channel_for("email")
    assert channel_for("email") is email  # kept: SDK connections stay alive
    monkeypatch.setenv("DUNNING_EMAIL_FROM", "accounts@example.org")
    assert channel_for("email") is email  # the environment alone changes nothing
    reload_settings()
    assert channel_for("email") is not email


def test_the_integrations_read_their_variables_through_the_root(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The sources and CRM files and a credential's default variable come from the root
    (a snapshot until reloaded); a variable a ``*_env`` key names is read when asked for."""
    from dunning.outbound.activities import crm_path
    from dunning.sources.config import sources_path

    monkeypatch.setenv("DUNNING_SOURCES_PATH", str(tmp_path / "s.toml"))
    monkeypatch.setenv("DUNNING_CRM_PATH", str(tmp_path / "c.toml"))
    monkeypatch.setenv("DUNNING_HUBSPOT_ACCESS_TOKEN", "pat-one")
    reload_settings()
    assert sources_path() == tmp_path / "s.toml" and crm_path() == tmp_path / "c.toml"
    integrations = get_settings().integrations
    assert integrations.variable("DUNNING_HUBSPOT_ACCESS_TOKEN") == "pat-one"
    assert "pat-one" not in repr(integrations)
    monkeypatch.setenv("DUNNING_HUBSPOT_ACCESS_TOKEN", "pat-two")
    monkeypatch.setenv("MY_HUBSPOT_TOKEN", "pat-mine")
    assert get_settings().integrations.variable("DUNNING_HUBSPOT_ACCESS_TOKEN") == "pat-one"
    assert get_settings().integrations.variable("MY_HUBSPOT_TOKEN") == "pat-mine"
    reload_settings()
    assert get_settings().integrations.variable("DUNNING_HUBSPOT_ACCESS_TOKEN") == "pat-two"
    monkeypatch.delenv("DUNNING_SOURCES_PATH")
    reload_settings()
    assert sources_path() == Path("sources.toml")


#: Modules that touch os.environ without reading a setting: they write Prefect's defaults
#: before Prefect is imported (cli, telemetry), hand the environment to a child process
#: (prefect_setup), or are the test and demo tooling (devtools, faultpoint).
ENVIRON_ALLOWED = (
    "dunning/config/",
    "dunning/devtools/",
    "dunning/faultpoint.py",
    "dunning/cli/__init__.py",
    "dunning/telemetry.py",
    "dunning/prefect_setup.py",
)


def test_no_setting_is_read_from_the_environment_outside_the_root() -> None:
    offenders = []
    for path in sorted((ROOT / "dunning").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ENVIRON_ALLOWED):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"os\.environ|getenv\(", line):
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "read settings with get_settings() (dunning/config/):\n" + "\n".join(
        offenders
    )
