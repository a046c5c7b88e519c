"""The templates directory is looked at once per RECHECK_S, not per message: an edited, added
or removed template is seen after that; within it, the state read before is used."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from dunning import render
from dunning.config.channels import ChannelSettings
from dunning.render import DEFAULT_TEMPLATES_DIR, compose, template_exists
from tests.render_support import reminder


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, target)
    return target


def _settings(folder: Path) -> ChannelSettings:
    return ChannelSettings(  # type: ignore[call-arg]
        templates_dir=str(folder), unsubscribe_secret=SecretStr("s3cret")
    )


def _sms(folder: Path, locale: str = "en_US") -> str:
    return compose(reminder(channel="sms", locale=locale), _settings(folder)).text


def test_edits_are_seen_once_the_directory_is_looked_at_again(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "RECHECK_S", 0.0)  # look every time
    before = _sms(folder)
    assert "EDITED" not in before
    (folder / "overdue_1" / "sms.en.txt").write_text("EDITED {{ invoice_number }}")
    assert _sms(folder).startswith("EDITED INV-2026-0007")
    # A new language is used as soon as it exists, and a removed one falls back.
    assert not template_exists(folder, "overdue_1/sms.xx.txt")
    shared = folder / "_shared"
    (shared / "xx.txt").write_text((shared / "en.txt").read_text())
    (folder / "overdue_1" / "sms.xx.txt").write_text("XX {{ invoice_number }}")
    assert template_exists(folder, "overdue_1/sms.xx.txt")
    assert _sms(folder, "xx").startswith("XX INV-2026-0007")
    (folder / "overdue_1" / "sms.xx.txt").unlink()
    assert _sms(folder, "xx").startswith("EDITED INV-2026-0007")


def test_within_the_recheck_time_the_state_read_before_is_used(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(render, "RECHECK_S", 3600.0)
    before = _sms(folder)
    (folder / "overdue_1" / "sms.en.txt").write_text("EDITED {{ invoice_number }}")
    (folder / "overdue_1" / "sms.xx.txt").write_text("XX")
    assert _sms(folder) == before
    assert not template_exists(folder, "overdue_1/sms.xx.txt")
    monkeypatch.setattr(render, "RECHECK_S", 0.0)
    assert _sms(folder).startswith("EDITED")
    assert template_exists(folder, "overdue_1/sms.xx.txt")


def test_a_missing_directory_has_no_templates(tmp_path: Path) -> None:
    assert not template_exists(tmp_path / "nowhere", "overdue_1/sms.en.txt")


def test_a_process_keeps_the_state_of_a_few_directories_only(tmp_path: Path) -> None:
    """Each directory's state holds its compiled templates: a process that renders from many
    directories (a test session) keeps only the last ``_MAX_DIRECTORIES``."""
    for k in range(render._MAX_DIRECTORIES + 5):
        (tmp_path / f"t{k}").mkdir()
        template_exists(tmp_path / f"t{k}", "overdue_1/sms.en.txt")
    assert len(render._states) <= render._MAX_DIRECTORIES
    assert str(tmp_path / f"t{render._MAX_DIRECTORIES + 4}") in render._states


def test_looking_at_the_directory_again_holds_no_other_thread(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one thread walks the directory again (a slow file system here: the walk waits
    until the other thread has looked a template up), the others use the state as it was."""
    assert template_exists(folder, "overdue_1/sms.en.txt")  # the first look, done
    walking, looked_up = threading.Event(), threading.Event()
    walked = render._signature

    def slow_walk(directory: str) -> tuple[tuple[str, int, int], ...]:
        walking.set()
        looked_up.wait(timeout=10)  # without the fix, the lookup waits on this walk's lock
        return walked(directory)

    monkeypatch.setattr(render, "_signature", slow_walk)
    monkeypatch.setattr(render, "RECHECK_S", 0.0)
    walker = threading.Thread(target=template_exists, args=(folder, "overdue_1/sms.en.txt"))
    walker.start()
    assert walking.wait(timeout=10)
    answers = []
    reader = threading.Thread(
        target=lambda: answers.append(template_exists(folder, "overdue_1/email.en.txt"))
    )
    reader.start()
    reader.join(timeout=5)
    finished_during_walk = not reader.is_alive()
    looked_up.set()
    walker.join(timeout=10)
    reader.join(timeout=10)
    assert finished_during_walk and answers == [True]
    # and the walk, once done, is the state: an edit made now is seen at the next look
    monkeypatch.setattr(render, "_signature", walked)
    (folder / "overdue_1" / "sms.en.txt").write_text("EDITED {{ invoice_number }}")
    assert _sms(folder).startswith("EDITED INV-2026-0007")
