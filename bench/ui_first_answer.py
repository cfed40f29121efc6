"""How long the chat UI takes to give its first cited answer: cold server, then a new session on a warm one.

Run: .venv/bin/python bench/ui_first_answer.py [INDEX_DIR]   (default .rag/index; needs /usr/bin/chromium)
Prints seconds from opening the page to the first citation chip on screen.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import ARGS, CHROMIUM, QUESTION, ask, free_port, stop_server, wait_healthy  # noqa: E402


def main() -> None:
    index = Path(sys.argv[1] if len(sys.argv) > 1 else ".rag/index").absolute()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAG_INDEX": str(index), "RAG_CORPUS": tempfile.mkdtemp(), "HF_HUB_OFFLINE": "1"}
    t_start = time.perf_counter()
    server = subprocess.Popen(
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
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_healthy(url, server)
        print(f"server up:                     {time.perf_counter() - t_start:6.2f} s")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            for label in ("cold server (loads model)", "warm server, new session", "warm server, new session"):
                page = browser.new_page()
                t0 = time.perf_counter()
                page.goto(url)
                ask(page, QUESTION)
                print(f"first answer, {label:26} {time.perf_counter() - t0:6.2f} s")
                page.close()
            browser.close()
    finally:
        stop_server(server)


if __name__ == "__main__":
    main()
