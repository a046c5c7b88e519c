"""The fault-injection hook: inert without DUNNING_CRASH_AT, kills on the nth time, pauses."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dunning.config import reload_settings
from dunning.devtools.faults import crash_point, parse, pause_files

SCRIPT = (
    "from dunning.devtools.faults import crash_point\n"
    "for i in range(1, 4):\n"
    "    crash_point('after_send'); crash_point('after_claim')\n"
    "    print(i, flush=True)\n"
)


def _run(spec: str | None, tmp_path: Path) -> subprocess.Popen[str]:
    env = {"PATH": "/usr/bin:/bin", "DUNNING_FAULT_DIR": str(tmp_path)}
    if spec is not None:
        env["DUNNING_CRASH_AT"] = spec
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_the_hook_is_inert_without_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUNNING_CRASH_AT", raising=False)
    reload_settings()
    crash_point("after_claim")  # returns: this test process lives on
    out, _ = _run(None, tmp_path).communicate(timeout=60)
    assert out.split() == ["1", "2", "3"]


def test_the_process_dies_by_sigkill_the_nth_time_the_point_is_reached(tmp_path: Path) -> None:
    proc = _run("after_claim:2", tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert out.split() == ["1"]  # killed in the 2nd round, before printing it


def test_a_paused_process_waits_for_the_resume_file(tmp_path: Path) -> None:
    paused, resume = pause_files("after_send", tmp_path)
    proc = _run("after_send:1:pause", tmp_path)
    while not paused.exists():
        assert proc.poll() is None
        time.sleep(0.05)
    assert proc.poll() is None  # still waiting: nothing printed yet
    resume.touch()
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.split() == ["1", "2", "3"]


@pytest.mark.parametrize(
    "spec", ["somewhere", "after_claim:x", "after_claim:0", "after_claim:1:boom"]
)
def test_a_bad_spec_is_refused_with_the_expected_form(spec: str) -> None:
    with pytest.raises(ValueError, match="DUNNING_CRASH_AT"):
        parse(spec)


def test_a_spec_reads_point_count_and_action() -> None:
    assert parse("after_record") == ("after_record", 1, "kill")
    assert parse("before_claim:3:pause") == ("before_claim", 3, "pause")
