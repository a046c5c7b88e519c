"""Channels: the factory that picks a provider for "email", "sms" or "voice" from the settings.

auto: SendGrid when an API key (or block) is configured, else SMTP when a host (or block) is,
else the outbox; Twilio when its credentials (or block) are configured, else the outbox.
"""

from __future__ import annotations

from typing import Any

from dunning.channels.base import Channel
from dunning.config import get_settings
from dunning.config.channels import ChannelSettings
from dunning.errors import ConfigError


def _load_block(block_cls: Any, name: str) -> Any:
    try:
        return block_cls.load(name)
    except ValueError as exc:
        raise ConfigError(
            f"Prefect block {name!r} of type {block_cls.__name__} could not be "
            f"loaded ({type(exc).__name__}); create it or unset the *_BLOCK "
            "setting to use environment variables"
        ) from None


def _sendgrid(settings: ChannelSettings) -> Channel:
    from dunning.channels.sendgrid import SendGridChannel

    if settings.sendgrid_block:
        from dunning.channels.blocks import SendGridCredentials

        block = _load_block(SendGridCredentials, settings.sendgrid_block)
        return SendGridChannel(settings, block.api_key, block.base_url, block.timeout_seconds)
    if settings.sendgrid_api_key is None:
        raise ConfigError(
            "SendGrid is selected but no API key is set: set "
            "DUNNING_SENDGRID_API_KEY (or SENDGRID_API_KEY, or "
            "DUNNING_SENDGRID_BLOCK)"
        )
    return SendGridChannel(
        settings,
        settings.sendgrid_api_key,
        settings.sendgrid_base_url,
        settings.provider_timeout_seconds,
    )


def _smtp(settings: ChannelSettings) -> Channel:
    from dunning.channels.smtp import SmtpChannel

    if settings.smtp_block:
        from dunning.channels.blocks import SmtpCredentials

        b = _load_block(SmtpCredentials, settings.smtp_block)
        return SmtpChannel(
            settings, b.host, b.port, b.username, b.password, b.starttls, b.ssl, b.timeout_seconds
        )
    if not settings.smtp_host:
        raise ConfigError(
            "SMTP is selected but DUNNING_SMTP_HOST is not set (or set DUNNING_SMTP_BLOCK)"
        )
    return SmtpChannel(
        settings,
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username,
        settings.smtp_password,
        settings.smtp_starttls,
        settings.smtp_ssl,
        settings.provider_timeout_seconds,
    )


def _twilio(settings: ChannelSettings) -> Channel:
    from dunning.channels.twilio import TwilioChannel
    from dunning.channels.twilio_config import require_twilio

    c = require_twilio(settings, "Twilio (selected for SMS)")
    return TwilioChannel(
        settings,
        c.account_sid,
        c.auth_token,
        c.from_number,
        c.messaging_service_sid,
        c.base_url,
        c.timeout_seconds,
        c.status_callback_url,
    )


def _twilio_voice(settings: ChannelSettings) -> Channel:
    from dunning.channels.twilio_config import require_twilio
    from dunning.channels.twilio_voice import TwilioVoiceChannel

    c = require_twilio(settings, "Twilio calls (selected for voice)")
    return TwilioVoiceChannel(
        settings,
        c.account_sid,
        c.auth_token,
        settings.voice_from_number or c.from_number,
        c.base_url,
        c.timeout_seconds,
    )


def _outbox(kind: str, settings: ChannelSettings) -> Channel:
    from dunning.channels.outbox import OutboxChannel

    return OutboxChannel(kind, get_settings().outbox_dir, settings)


def resolve_provider(kind: str, settings: ChannelSettings) -> str:
    """The provider name ``get_channel(kind)`` will use under ``settings``."""
    if kind == "email":
        if settings.email_provider != "auto":
            return settings.email_provider
        if settings.sendgrid_block or settings.sendgrid_api_key is not None:
            return "sendgrid"
        if settings.smtp_block or settings.smtp_host:
            return "smtp"
        return "outbox"
    if kind in ("sms", "voice"):
        chosen = settings.sms_provider if kind == "sms" else settings.voice_provider
        if chosen != "auto":
            return chosen
        from dunning.channels.twilio_config import twilio_configured

        if twilio_configured(settings):
            return "twilio"
        return "outbox"
    raise ConfigError(f"unknown channel {kind!r}: expected 'email', 'sms' or 'voice'")


def get_channel(kind: str, settings: ChannelSettings | None = None) -> Channel:
    """The channel object that sends ``kind`` ("email" | "sms" | "voice") messages."""
    from dunning.privacy import redact_sdk_logging

    # The SDKs log request headers (API keys) at DEBUG: scrub them before any request.
    redact_sdk_logging()
    settings = settings or get_settings().channels
    provider = resolve_provider(kind, settings)
    if provider == "sendgrid":
        return _sendgrid(settings)
    if provider == "smtp":
        return _smtp(settings)
    if provider == "twilio":
        return _twilio_voice(settings) if kind == "voice" else _twilio(settings)
    return _outbox(kind, settings)


def check_email_compliance(settings: ChannelSettings | None = None) -> None:
    """Raise ConfigError when real e-mail (SendGrid or SMTP) would go out with a one-click
    unsubscribe link that cannot work: the secret or base URL still at its development default
    (RFC 8058; Gmail and Yahoo require a working one-click unsubscribe from bulk senders).
    The outbox is exempt: nothing leaves the machine."""
    from dunning.config.channels import unsubscribe_problems

    settings = settings or get_settings().channels
    provider = resolve_provider("email", settings)
    if provider not in ("sendgrid", "smtp"):
        return
    problems = unsubscribe_problems(settings)
    if problems:
        raise ConfigError(f"refusing to send e-mail with {provider}: " + "; ".join(problems))


__all__ = ["check_email_compliance", "get_channel", "resolve_provider"]
