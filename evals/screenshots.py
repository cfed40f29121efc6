"""Screenshots of every page of the chat UI, for a reviewer: `python evals/screenshots.py` -> evals/out/screenshots/.

Starts `streamlit run ui/main.py` on a free localhost port against an index (`--index`, else a fresh index
of corpus/ built into a temporary folder), drives Debian's headless chromium at 1400x900 with Playwright,
and saves:

- 01-chat-empty.png: the empty chat, with the library and the suggested questions;
- 02-chat-answer.png: a figure question's answer, its numbered citations and sources;
- 03-chat-panel-pdf.png: a citation of a PDF opened in the side panel: the paragraph, and the page with
  the quoted sentence's boxes highlighted;
- 04-chat-panel-table.png: a table citation in the panel, the quoted row marked on the page;
- 05-reader-table-row.png: the Reader opened from that citation: page markers, the quoted row marked;
- 06-library.png, 07-evals.png: the other pages.

Nothing is written outside `--out` and a temporary folder (the conversations, the index it builds).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser import ARGS, CHIP, CHROMIUM, PANEL, free_port, start_app, stop_server, wait_healthy  # noqa: E402

FIGURE_QUESTION = "How many vehicles did China export in 2023?"
TABLE_QUESTION = "What was the average lithium-ion battery pack price in 2024?"
VIEWPORT = {"width": 1400, "height": 900}


def settle(page, timeout: float = 60_000) -> None:
    """Until the app has finished its run: no running indicator, no element drawn by an earlier run."""
    page.wait_for_timeout(200)
    page.wait_for_function(
        "!document.querySelector('[data-testid=stStatusWidget]') && !document.querySelector('[data-stale=true]')",
        timeout=timeout,
    )
    page.wait_for_timeout(300)


def ask(page, question: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    box.wait_for(timeout=90_000)
    box.fill(question)
    box.press("Enter")
    page.locator("[data-testid=stChatMessage]", has_text=question).wait_for(timeout=90_000)
    page.locator("[data-testid=stChatMessage]").last.locator(CHIP).first.wait_for(timeout=90_000)
    settle(page)


def open_first_citation(page):
    """Click the last answer's first numbered citation; the side panel, once its page image has loaded."""
    page.locator("[data-testid=stChatMessage]").last.locator(CHIP).first.click()
    panel = page.locator(PANEL)
    panel.wait_for(timeout=30_000)
    settle(page)
    panel.locator(".pc-page img").first.wait_for(timeout=30_000)
    return panel


def shoot(page, out: Path, name: str) -> Path:
    path = out / name
    page.screenshot(path=str(path), full_page=False)
    print(path)
    return path


def run(index: Path, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="paracite-shots-"))
    (work / "corpus").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "RAG_INDEX": str(index),
        "RAG_CORPUS": str(work / "corpus"),
        "RAG_CONVERSATIONS": str(work / "conversations"),
    }
    shots = []
    with open(work / "streamlit.log", "wb") as log:
        server = start_app(port, env, log, "--secrets.files", str(work / "no-secrets.toml"))
        try:
            wait_healthy(url, server)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.goto(url)
                    page.locator("[class*='st-key-suggest-']").first.wait_for(timeout=90_000)
                    settle(page)
                    shots.append(shoot(page, out, "01-chat-empty.png"))
                    ask(page, FIGURE_QUESTION)
                    shots.append(shoot(page, out, "02-chat-answer.png"))
                    open_first_citation(page)
                    shots.append(shoot(page, out, "03-chat-panel-pdf.png"))
                    ask(page, TABLE_QUESTION)
                    panel = open_first_citation(page)
                    shots.append(shoot(page, out, "04-chat-panel-table.png"))
                    panel.get_by_role("button", name="Open in document").click()
                    page.locator(".pc-para.pc-target-row tr.pc-quoted").wait_for(timeout=60_000)
                    settle(page)
                    page.wait_for_timeout(500)  # the reader scrolls to the paragraph
                    shots.append(shoot(page, out, "05-reader-table-row.png"))
                    page.goto(f"{url}/library")
                    page.get_by_test_id("stFileUploader").wait_for(timeout=60_000)
                    settle(page)
                    shots.append(shoot(page, out, "06-library.png"))
                    page.goto(f"{url}/eval_report")
                    page.get_by_role("heading").first.wait_for(timeout=60_000)
                    settle(page)
                    shots.append(shoot(page, out, "07-evals.png"))
                finally:
                    browser.close()
        finally:
            stop_server(server)
    shutil.rmtree(work, ignore_errors=True)
    return shots


def build_index(folder: Path) -> Path:
    from rag.embed.embedder import Embedder
    from rag.index.ingest import ingest

    index = folder / "index"
    report = ingest([ROOT / "corpus"], index, Embedder())
    if report.failed:
        raise SystemExit(f"the corpus did not ingest: {report.failed}")
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, help="an index of corpus/ (default: build one in a temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "evals" / "out" / "screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="paracite-index-") as tmp:
        index = args.index or build_index(Path(tmp))
        run(index, args.out)


if __name__ == "__main__":
    main()
