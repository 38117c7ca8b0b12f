"""A niced worker carries its nice to its session's autogroup (notifier.autogroup)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from notifier import autogroup


def _group(tmp_path: Path, nice: int) -> Path:
    path = tmp_path / "autogroup"
    path.write_text(f"/autogroup-85 nice {nice}\n")
    return path


def test_a_niced_process_writes_its_nice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(os, "nice", lambda _inc: 10)
    path = _group(tmp_path, 0)
    assert autogroup.carry_nice(path) == 10
    assert path.read_text() == "10"


@pytest.mark.parametrize(("own", "group"), [(0, 0), (5, 5), (5, 10)])
def test_nothing_to_carry_leaves_the_group_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own: int, group: int
):
    """Not niced, or the group already as nice (or nicer): no write."""
    monkeypatch.setattr(os, "nice", lambda _inc: own)
    path = _group(tmp_path, group)
    assert autogroup.carry_nice(path) is None
    assert path.read_text() == f"/autogroup-85 nice {group}\n"


def test_no_autogroups_or_a_refusal_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(os, "nice", lambda _inc: 10)
    assert autogroup.carry_nice(tmp_path / "missing") is None
    refusing = _group(tmp_path, 0)
    monkeypatch.setattr(Path, "write_text", _refuse)
    assert autogroup.carry_nice(refusing) is None
    assert "not carried" in caplog.text


def _refuse(self: Path, _text: str) -> int:
    raise PermissionError(13, "Permission denied", str(self))


@pytest.mark.skipif(not autogroup.AUTOGROUP.exists(), reason="this kernel has no autogroups")
def test_a_niced_session_leader_lowers_its_sessions_share():
    """On the real file: a process in a session of its own, under nice 10, ends with its
    session's autogroup at nice 10 (what the demo's and a process manager's workers are)."""
    code = (
        "from notifier import autogroup; "
        "print(autogroup.carry_nice(), autogroup.AUTOGROUP.read_text().split()[-1])"
    )
    done = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, start_new_session=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["10", "10"]  # written, and the kernel reads it back
