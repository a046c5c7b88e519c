"""Masking of personal data for logs, artifacts and exceptions."""

from __future__ import annotations

import re


def mask_email(email: str | None) -> str:
    """``jane.doe@example.com`` -> ``j***@e***.com``; empty input gives ``-``."""
    if not email:
        return "-"
    local, _, domain = email.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    return f"{local[:1]}***@{host[:1]}***{dot}{tld}"


def mask_phone(phone: str | None) -> str:
    """``+4915112345678`` -> ``+49*******5678``; empty input gives ``-``."""
    if not phone:
        return "-"
    digits = phone.strip()
    if len(digits) <= 6:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_address(channel: str, address: str | None) -> str:
    """The address masked the way its channel needs (email or sms)."""
    return mask_email(address) if channel == "email" else mask_phone(address)


_EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE_RE = re.compile(r"\+\d{8,15}")


def scrub(text: str) -> str:
    """``text`` with every email address and E.164 phone number in it masked."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)
