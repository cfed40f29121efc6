"""End to end in a real headless browser: Debian's chromium driven by Playwright (no browser download).

Starts `streamlit run ui/main.py` on a free localhost port against a copy of the corpus index,
asks a question, clicks a numbered citation and checks that the side panel shows the quoted sentence; then
checks the single-user mode's Library (no sign-in, the upload form, the note that it is one user's).
The screenshot goes to the test's tmp dir and to evals/out/ui-screenshot.png (git-ignored).
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
from tests.browser import ARGS, CHIP, CHROMIUM, PANEL, QUESTION, ask, free_port, start_app, stop_server, wait_healthy


def test_browser_question_chip_panel(tmp_path, corpus_index):
    from playwright.sync_api import sync_playwright

    shutil.copytree(corpus_index, tmp_path / "index")
    (tmp_path / "corpus").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {"RAG_INDEX": str(tmp_path / "index"), "RAG_CORPUS": str(tmp_path / "corpus")}
    log = open(tmp_path / "streamlit.log", "wb")
    # No secrets file, so no [auth] section: the single-user mode, whatever lies in ~/.streamlit.
    server = start_app(port, env, log, "--secrets.files", str(tmp_path / "no-secrets.toml"))
    try:
        wait_healthy(url, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                page.goto(url)
                chip = ask(page, QUESTION)

                claim = page.locator("[data-testid=stChatMessage] [class*='st-key-claim-']").first
                sentence = claim.locator("[data-testid=stMarkdownContainer]").first.inner_text()
                claim.locator(CHIP).first.click()
                panel = page.locator(PANEL)
                panel.wait_for(timeout=30_000)
                mark = panel.locator(".pc-main mark").first
                mark.wait_for(timeout=30_000)
                quoted = " ".join(mark.inner_text().split())
                shown = " ".join(sentence.split())
                assert quoted and quoted == shown, (shown, quoted)  # the panel marks the sentence the number follows
                # Beside the conversation, not over it: the question stays visible and nothing is modal.
                assert page.get_by_role("dialog").count() == 0 and page.get_by_text(QUESTION).first.is_visible()
                assert panel.get_by_text("Open in document").count() == 1
                page.wait_for_timeout(400)
                shot = tmp_path / "ui-screenshot.png"
                page.screenshot(path=str(shot), full_page=False)
                out = ROOT / "evals" / "out"
                out.mkdir(parents=True, exist_ok=True)
                shutil.copy(shot, out / "ui-screenshot.png")

                # A reload starts a new Streamlit session; the conversation comes back from the URL's id.
                assert "c=" in page.url
                page.reload()
                chip = page.locator(f"[data-testid=stChatMessage] {CHIP}").first
                chip.wait_for(timeout=90_000)
                assert page.get_by_text(QUESTION).count() >= 1

                # "Open in document" lands in the reader on the cited paragraph.
                chip.click()
                page.locator(PANEL).get_by_text("Open in document").click()
                page.locator(".pc-para.pc-target").wait_for(timeout=30_000)
                assert "para=" in page.url

                # Without sign-in the Library says whose app this is, and offers the upload form.
                page.goto(f"{url}/library")
                page.get_by_text("runs here for one local user, on 127.0.0.1").wait_for(timeout=60_000)
                page.get_by_test_id("stFileUploader").wait_for(timeout=60_000)  # drawn after the table
                assert page.get_by_text("Sign in").count() == 0
            finally:
                browser.close()
    finally:
        stop_server(server)
        log.close()
