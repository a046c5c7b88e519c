"""deployments/environments/*.toml: approval is on for production only, and an operator's
own environment wins over the file."""

from __future__ import annotations

import pytest

from deployments.serve import apply_settings, load_environment
from dunning.config import get_settings, reload_settings


def _forget_approval_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset DUNNING_APPROVAL_*, restored after the test (apply_settings writes os.environ)."""
    for name in (
        "DUNNING_APPROVAL_ENABLED",
        "DUNNING_APPROVAL_MAX_MESSAGES",
        "DUNNING_APPROVAL_TIMEOUT_SECONDS",
    ):
        monkeypatch.setenv(name, "")  # registers the original value for restoring
        monkeypatch.delenv(name)
        reload_settings()


def test_production_turns_approval_on_and_local_leaves_it_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _forget_approval_settings(monkeypatch)
    assert apply_settings(load_environment("local")) == {}
    assert get_settings().approval.enabled is False  # the CLI's and notebooks' default
    applied = apply_settings(load_environment("production"))
    assert applied["DUNNING_APPROVAL_ENABLED"] == "true"
    assert get_settings().approval.enabled is True


def test_the_operators_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_approval_settings(monkeypatch)
    monkeypatch.setenv("DUNNING_APPROVAL_ENABLED", "false")
    reload_settings()
    assert apply_settings(load_environment("production"))["DUNNING_APPROVAL_ENABLED"] == "false"
    assert get_settings().approval.enabled is False
