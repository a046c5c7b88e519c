"""Channels: the factory that picks a provider for "email", "sms" or "voice" from the settings.

auto: SendGrid when an API key (or block) is configured, else SMTP when a host (or block) is,
else the outbox; Twilio when its credentials (or block) are configured, else the outbox.
"""

from __future__ import annotations

from typing import Any

from dunning.channels.base import Channel
from dunning.channels.settings import ChannelSettings, get_channel_settings
from dunning.config import get_settings
from dunning.errors import ConfigError


def _load_block(block_cls: Any, name: str) -> Any:
    try:
        return block_cls.load(name)
    except ValueError as exc:
        raise ConfigError(f"Prefect block {name!r} of type {block_cls.__name__} could not be "
                          f"loaded ({type(exc).__name__}); create it or unset the *_BLOCK "
                          "setting to use environment variables") from None


def _sendgrid(settings: ChannelSettings) -> Channel:
    from dunning.channels.sendgrid import SendGridChannel

    if settings.sendgrid_block:
        from dunning.channels.blocks import SendGridCredentials

        block = _load_block(SendGridCredentials, settings.sendgrid_block)
        return SendGridChannel(settings, block.api_key, block.base_url, block.timeout_seconds)
    if settings.sendgrid_api_key is None:
        raise ConfigError("SendGrid is selected but no API key is set: set "
                          "DUNNING_SENDGRID_API_KEY (or SENDGRID_API_KEY, or "
                          "DUNNING_SENDGRID_BLOCK)")
    return SendGridChannel(settings, settings.sendgrid_api_key, settings.sendgrid_base_url,
                           settings.provider_timeout_seconds)


def _smtp(settings: ChannelSettings) -> Channel:
    from dunning.channels.smtp import SmtpChannel

    if settings.smtp_block:
        from dunning.channels.blocks import SmtpCredentials

        b = _load_block(SmtpCredentials, settings.smtp_block)
        return SmtpChannel(settings, b.host, b.port, b.username, b.password, b.starttls, b.ssl,
                           b.timeout_seconds)
    if not settings.smtp_host:
        raise ConfigError("SMTP is selected but DUNNING_SMTP_HOST is not set "
                          "(or set DUNNING_SMTP_BLOCK)")
    return SmtpChannel(settings, settings.smtp_host, settings.smtp_port, settings.smtp_username,
                       settings.smtp_password, settings.smtp_starttls, settings.smtp_ssl,
                       settings.provider_timeout_seconds)


def _twilio(settings: ChannelSettings) -> Channel:
    from dunning.channels.twilio import TwilioChannel

    if settings.twilio_block:
        from dunning.channels.blocks import TwilioCredentials

        b = _load_block(TwilioCredentials, settings.twilio_block)
        return TwilioChannel(settings, b.account_sid, b.auth_token, b.from_number,
                             b.messaging_service_sid, b.base_url, b.timeout_seconds,
                             b.status_callback_url or settings.twilio_status_callback_url)
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise ConfigError("Twilio is selected but credentials are missing: set "
                          "DUNNING_TWILIO_ACCOUNT_SID and DUNNING_TWILIO_AUTH_TOKEN (or "
                          "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN, or DUNNING_TWILIO_BLOCK)")
    return TwilioChannel(settings, settings.twilio_account_sid, settings.twilio_auth_token,
                         settings.twilio_from_number, settings.twilio_messaging_service_sid,
                         settings.twilio_base_url, settings.provider_timeout_seconds,
                         settings.twilio_status_callback_url)


def _twilio_voice(settings: ChannelSettings) -> Channel:
    from dunning.channels.twilio_voice import TwilioVoiceChannel

    if settings.twilio_block:
        from dunning.channels.blocks import TwilioCredentials

        b = _load_block(TwilioCredentials, settings.twilio_block)
        return TwilioVoiceChannel(settings, b.account_sid, b.auth_token,
                                  settings.voice_from_number or b.from_number, b.base_url,
                                  b.timeout_seconds)
    if not settings.twilio_account_sid or settings.twilio_auth_token is None:
        raise ConfigError("Twilio calls are selected but credentials are missing: set "
                          "DUNNING_TWILIO_ACCOUNT_SID and DUNNING_TWILIO_AUTH_TOKEN (or "
                          "TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN, or DUNNING_TWILIO_BLOCK)")
    return TwilioVoiceChannel(settings, settings.twilio_account_sid, settings.twilio_auth_token,
                              settings.voice_from_number or settings.twilio_from_number,
                              settings.twilio_base_url, settings.provider_timeout_seconds)


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
        if settings.twilio_block or (settings.twilio_account_sid and settings.twilio_auth_token):
            return "twilio"
        return "outbox"
    raise ConfigError(f"unknown channel {kind!r}: expected 'email', 'sms' or 'voice'")


def get_channel(kind: str, settings: ChannelSettings | None = None) -> Channel:
    """The channel object that sends ``kind`` ("email" | "sms" | "voice") messages."""
    from dunning.privacy import redact_sdk_logging

    # The SDKs log request headers (API keys) at DEBUG: scrub them before any request.
    redact_sdk_logging()
    settings = settings or get_channel_settings()
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
    from dunning.channels.settings import unsubscribe_problems

    settings = settings or get_channel_settings()
    provider = resolve_provider("email", settings)
    if provider not in ("sendgrid", "smtp"):
        return
    problems = unsubscribe_problems(settings)
    if problems:
        raise ConfigError(f"refusing to send e-mail with {provider}: " + "; ".join(problems))


__all__ = ["check_email_compliance", "get_channel", "resolve_provider"]
