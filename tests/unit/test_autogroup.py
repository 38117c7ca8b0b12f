"""A niced bulk worker sets its session's autogroup nice: its own while transactional work
is about, 0 when not (notifier.autogroup)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from notifier import autogroup


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    autogroup.forget()
    yield
    autogroup.forget()


def _group(tmp_path: Path, nice: int) -> Path:
    path = tmp_path / "autogroup"
    path.write_text(f"/autogroup-85 nice {nice}\n")
    return path


def test_a_niced_process_yields_while_told_and_takes_its_share_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(os, "nice", lambda _inc: 10)
    path = _group(tmp_path, 0)
    assert autogroup.yield_share(False, path) is None  # already at full weight
    assert autogroup.yield_share(True, path) == 10
    assert path.read_text() == "10"
    assert autogroup.yield_share(True, path) is None  # no write when nothing changes
    assert autogroup.yield_share(False, path) == 0
    assert path.read_text() == "0"


def test_a_process_at_nice_0_never_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The demo's one worker serves both lanes at nice 0: it competes at full weight."""
    monkeypatch.setattr(os, "nice", lambda _inc: 0)
    path = _group(tmp_path, 0)
    assert autogroup.yield_share(True, path) is None
    assert path.read_text() == "/autogroup-85 nice 0\n"
    assert not autogroup.can_yield()


def test_no_autogroups_or_a_refusal_stops_the_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    monkeypatch.setattr(os, "nice", lambda _inc: 10)
    assert autogroup.yield_share(True, tmp_path / "missing") is None
    autogroup.forget()
    refusing = _group(tmp_path, 0)
    writes: list[str] = []

    def refuse(self: Path, text: str) -> int:
        writes.append(text)
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    assert autogroup.yield_share(True, refusing) is None
    assert autogroup.yield_share(False, refusing) is None
    assert writes == ["10"]  # tried once, then left alone
    assert "cannot set its autogroup" in caplog.text


@pytest.mark.skipif(not autogroup.AUTOGROUP.exists(), reason="this kernel has no autogroups")
def test_the_kernel_takes_the_nice_and_gives_it_back():
    """On the real file, in a session of its own under nice 10 (as a Procfile process under
    honcho, or the bench's bulk workers): the kernel reads back what was written."""
    code = (
        "from notifier import autogroup as a; "
        "print(a.yield_share(True), a.AUTOGROUP.read_text().split()[-1], "
        "a.yield_share(False), a.AUTOGROUP.read_text().split()[-1])"
    )
    done = subprocess.run(
        ["nice", "-n", "10", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, start_new_session=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["10", "10", "0", "0"]
