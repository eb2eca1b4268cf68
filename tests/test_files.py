"""Files written whole or not at all: an interrupted write leaves the old file and no litter."""

from __future__ import annotations

import json

import pytest

import gradsight.files
from gradsight.diagnosis import Finding, save_findings
from gradsight.files import write_atomic


def interrupt_the_rename(monkeypatch):
    def interrupted(source, target):
        raise KeyboardInterrupt  # Ctrl-C between the write and the rename

    monkeypatch.setattr(gradsight.files.os, "replace", interrupted)


@pytest.mark.parametrize("data", ["new text é", b"\x00new bytes"], ids=["text", "bytes"])
def test_a_write_replaces_the_file_whole(tmp_path, data):
    path = tmp_path / "page.html"
    path.write_text("old")
    write_atomic(path, data)
    expected = data.encode() if isinstance(data, str) else data
    assert path.read_bytes() == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


def test_an_interrupted_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "page.html"
    path.write_text("old")
    interrupt_the_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new" * 1000)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html"]


def test_interrupted_findings_keep_the_previous_findings(tmp_path, monkeypatch):
    finding = Finding(
        kind="loss_plateau", severity="warning", layers=[], steps=[1, 2], summary="stuck",
        evidence={}, explanation="flat", remedies=[],
    )  # fmt: skip
    path = save_findings([finding], tmp_path / "findings.json")
    interrupt_the_rename(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        save_findings([], path)
    assert json.loads(path.read_text())[0]["kind"] == "loss_plateau"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["findings.json"]
