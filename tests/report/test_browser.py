"""Open a report in a real headless browser (Debian's chromium): it renders, offline, with no
console error. Slow: starts a browser."""

import shutil
import struct
import subprocess

import pytest

from gradsight.diagnosis import Finding, Remedy
from gradsight.report import report
from gradsight.telemetry import History, read_run

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    return found


def png_size(path):
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


@pytest.mark.slow
def test_report_renders_in_headless_chromium(mlp_run, tmp_path):
    browser = chromium()
    finding = Finding(
        "vanishing_gradients",
        "critical",
        "Gradient norm falls by 1.8e4 from the last layer to the first.",
        "sigmoid' <= 1/4",
        layers=("fc1",),
        remedies=(Remedy("relu_activation"),),
    )
    page = report(
        History.load(mlp_run), [finding], tmp_path / "report.html", run_info=read_run(mlp_run)
    )
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,3000",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = done.stdout + done.stderr
    assert done.returncode == 0, log
    bad = [
        line
        for line in log.splitlines()
        if "Uncaught" in line or "console error" in line or "CONSOLE" in line
    ]
    assert bad == []
    assert png_size(shot) == (1200, 3000)
    assert shot.stat().st_size > 50_000  # a page with figures, not a blank screen
