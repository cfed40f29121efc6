"""Helpers for driving the real app in Debian's headless chromium: start it, wait for it, ask, stop it.

Shared by tests/test_ui_browser.py, tests/test_team_browser.py and bench/ui_first_answer.py (not a
test module itself).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
QUESTION = "How many vehicles did China export in 2023?"
CHIP = "[class*='st-key-chip-'] button"  # a numbered citation of a quoted sentence ([1]); the lead's is leadchip-
PANEL = ".st-key-citation-panel"  # the side panel a citation opens


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, env: dict[str, str], log, *options: str) -> subprocess.Popen:
    """`streamlit run ui/main.py` on 127.0.0.1:`port` in its own process group (for `stop_server`);
    `options` are more `--section.option value` flags (e.g. `--secrets.files PATH`)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "ui" / "main.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
            *options,
        ],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(
    url: str, proc: subprocess.Popen, timeout: float = 60, health: str = "/_stcore/health", name: str = "streamlit"
) -> None:
    """Until the server `proc` answers 200 at `url` + `health` (Streamlit's by default; `rag serve`'s is /health)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}{health}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{name} did not answer at {url} within {timeout}s")


def ask(page, question: str):
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=90_000)
    box.fill(question)
    box.press("Enter")
    chip = page.locator(f"[data-testid=stChatMessage] {CHIP}").first
    chip.wait_for(timeout=90_000)
    return chip


def stop_server(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Stop a server started with `start_new_session=True`, and its children: politely, then for sure."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
