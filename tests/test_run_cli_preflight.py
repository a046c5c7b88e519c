"""`dunning run` checks the provider configuration before anything starts (no Prefect server,
no traceback), in --dry-run too; the Prefect servers our code starts send no telemetry."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dunning.channels.preflight import check_provider_config
from dunning.config import reload_settings
from dunning.errors import ConfigError

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PREFECT_", "DUNNING_", "SENDGRID_", "TWILIO_", "DO_NOT_TRACK"))
    }
    env.update(
        {
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "DUNNING_HOME": str(tmp_path / "home"),
            "DUNNING_DATABASE_URL": f"sqlite:///{tmp_path / 'nowhere' / 'd.db'}",
            **extra,
        }
    )
    return env


@pytest.mark.parametrize(
    ("args", "settings", "words"),
    [
        (
            ["run", "--dry-run"],
            {"DUNNING_EMAIL_PROVIDER": "sendgrid"},
            ["SendGrid is selected but no API key is set", "DUNNING_SENDGRID_API_KEY"],
        ),
        (["run"], {"DUNNING_EMAIL_PROVIDER": "sendgrid"}, ["DUNNING_SENDGRID_API_KEY"]),
        (
            ["run", "--dry-run", "--channel", "sms"],
            {"DUNNING_SMS_PROVIDER": "twilio"},
            ["Twilio", "credentials", "DUNNING_TWILIO_ACCOUNT_SID"],
        ),
        (
            ["run", "--dry-run"],
            {"DUNNING_PROVIDER_TIMEOUT_SECONDS": "-3"},
            ["invalid setting", "DUNNING_PROVIDER_TIMEOUT_SECONDS='-3'", "greater than 0"],
        ),
    ],
)
def test_a_bad_provider_setting_is_one_line_before_any_prefect_server(
    tmp_path: Path, args: list[str], settings: dict[str, str], words: list[str]
):
    done = subprocess.run(
        [str(BIN / "dunning"), *args],
        env=_env(tmp_path, **settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    # checked before the database and before any Prefect server: neither was created
    assert not (tmp_path / "prefect" / "prefect.db").exists()
    assert not (tmp_path / "nowhere").exists()


def test_a_channel_the_run_does_not_use_is_not_required(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DUNNING_EMAIL_PROVIDER", "sendgrid")
    reload_settings()
    assert check_provider_config(["sms"]) == {"sms": "outbox"}
    with pytest.raises(ConfigError, match="DUNNING_SENDGRID_API_KEY"):
        check_provider_config(["email", "sms"])
    monkeypatch.setenv("DUNNING_SENDGRID_API_KEY", "SG.test")
    reload_settings()
    assert check_provider_config(["email"]) == {"email": "sendgrid"}


def test_importing_dunning_turns_prefect_telemetry_off_unless_the_user_set_it(tmp_path: Path):
    probe = (
        "import os, dunning\n"
        "from prefect.settings import get_current_settings\n"
        "print(get_current_settings().server.analytics_enabled, os.environ['DO_NOT_TRACK'])"
    )
    quiet = subprocess.run(
        [sys.executable, "-c", probe],
        env=_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert quiet.stdout.split() == ["False", "1"]
    chosen = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(tmp_path, PREFECT_SERVER_ANALYTICS_ENABLED="true", DO_NOT_TRACK="0"),
        check=True,
    )
    assert chosen.stdout.split() == ["True", "0"]


def test_a_policy_without_calls_needs_no_voice_setup(tmp_path: Path) -> None:
    """Twilio credentials with no webhook public URL: fine while the policy places no calls,
    one clear line naming DUNNING_WEBHOOK_PUBLIC_URL when it does (examples/policy_voice.toml)."""
    from dunning.policy import load_policy

    voice_policy = ROOT / "examples" / "policy_voice.toml"
    assert "voice" not in load_policy(ROOT / "dunning" / "policy" / "default_policy.toml").channels
    assert {"voice", "sms"} <= load_policy(voice_policy).channels
    twilio = {
        "DUNNING_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "DUNNING_TWILIO_AUTH_TOKEN": "secret-token",
        "DUNNING_TWILIO_FROM_NUMBER": "+15005550006",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "dunning"), "run", "--dry-run", *args],
            env=_env(tmp_path, **twilio),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    calls = run("--policy", str(voice_policy))
    assert calls.returncode == 1 and "DUNNING_WEBHOOK_PUBLIC_URL" in calls.stderr
    # Without calls the provider check passes and the run stops later, at the missing database.
    plain = run()
    assert "DUNNING_WEBHOOK_PUBLIC_URL" not in plain.stderr
    assert "database" in plain.stderr.lower()
