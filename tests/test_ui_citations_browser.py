"""The original beside the chat, in Debian's headless chromium (one browser session for all of it).

- An empty chat shows the library and suggested questions; a suggestion, clicked, is answered with citations.
- A numbered citation of a PDF sentence opens the side panel (no modal; the question stays in view) with
  the rendered page and the quoted sentence's boxes on it, beside the paragraph's clean text.
- A table citation's panel marks the quoted row on the page; "Open in document" lands in the Reader with
  its page markers, the original file to download, and only the quoted row of the table marked.
"""

from __future__ import annotations

import shutil

from evals.screenshots import FIGURE_QUESTION, TABLE_QUESTION, ask, settle
from tests.browser import ARGS, CHIP, CHROMIUM, PANEL, free_port, start_app, stop_server, wait_healthy


def _panel_page(page):
    """The last answer's first numbered citation, clicked: the panel, once its page image is drawn."""
    page.locator("[data-testid=stChatMessage]").last.locator(CHIP).first.click()
    panel = page.locator(PANEL)
    panel.wait_for(timeout=30_000)
    settle(page)
    panel.locator(".pc-page img").first.wait_for(timeout=30_000)
    return panel


def _boxes_on_image(panel) -> tuple[int, list[dict], dict]:
    """How wide the rendered page is (natural pixels), the highlight boxes' rectangles, and the image's."""
    clip = panel.locator(".pc-clip").first
    natural = clip.locator("img").evaluate("img => img.naturalWidth")
    boxes = [b.bounding_box() for b in clip.locator(".pc-box").all()]
    return natural, boxes, clip.bounding_box()


def test_suggestions_side_panel_page_boxes_and_reader(tmp_path, corpus_index):
    from playwright.sync_api import sync_playwright

    shutil.copytree(corpus_index, tmp_path / "index")
    (tmp_path / "corpus").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "RAG_INDEX": str(tmp_path / "index"),
        "RAG_CORPUS": str(tmp_path / "corpus"),
        "RAG_CONVERSATIONS": str(tmp_path / "conversations"),
    }
    log = open(tmp_path / "streamlit.log", "wb")
    server = start_app(port, env, log, "--secrets.files", str(tmp_path / "no-secrets.toml"))
    try:
        wait_healthy(url, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(url)

                # The empty chat: the library, and 3 to 5 questions drawn from it.
                welcome = page.locator(".st-key-welcome")
                welcome.locator("[class*='st-key-suggest-'] button").first.wait_for(timeout=90_000)
                assert welcome.get_by_text("6 documents in the library").count() == 1
                assert welcome.get_by_text("China's Vehicle Exports, 2021 to 2024", exact=False).count() == 1
                suggestions = welcome.locator("[class*='st-key-suggest-'] button")
                assert 3 <= suggestions.count() <= 5
                asked = suggestions.first.locator("[data-testid=stMarkdownContainer]").inner_text().strip()
                suggestions.first.click()
                page.locator("[data-testid=stChatMessage]", has_text=asked).wait_for(timeout=60_000)
                page.locator("[data-testid=stChatMessage]").last.locator(CHIP).first.wait_for(timeout=60_000)
                assert page.get_by_text("Not found in the documents").count() == 0
                assert page.locator(".st-key-welcome").count() == 0  # the welcome gives way to the conversation

                # A sentence of a PDF: the side panel, the page as printed, the sentence's lines boxed on it.
                ask(page, FIGURE_QUESTION)
                panel = _panel_page(page)
                assert page.get_by_role("dialog").count() == 0
                assert page.get_by_text(FIGURE_QUESTION).first.is_visible()  # the conversation stays in view
                assert panel.get_by_text("As printed on page", exact=False).count() == 1
                natural, boxes, image = _boxes_on_image(panel)
                assert natural > 600  # a rendered page, not an icon
                assert len(boxes) >= 2  # the quoted sentence runs over more than one line
                for box in boxes:
                    assert image["x"] <= box["x"] and box["x"] + box["width"] <= image["x"] + image["width"] + 1
                    assert image["y"] <= box["y"] and box["y"] + box["height"] <= image["y"] + image["height"] + 1
                quote = " ".join(panel.locator(".pc-main mark").first.inner_text().split())
                assert "5.221 million vehicles" in quote  # beside it, the clean paragraph with the same sentence

                # A table of a PDF: one row boxed on the page, then the Reader with that row marked.
                ask(page, TABLE_QUESTION)
                panel = _panel_page(page)
                assert panel.get_by_text("the quoted row highlighted", exact=False).count() == 1
                _, boxes, _ = _boxes_on_image(panel)
                assert len(boxes) == 1  # one printed row
                assert panel.locator("tr.pc-quoted").count() == 1
                panel.get_by_role("button", name="Open in document").click()
                row = page.locator(".pc-para.pc-target-row tr.pc-quoted")
                row.wait_for(timeout=60_000)
                assert "$115/kWh" in row.inner_text()
                assert page.locator("tr.pc-quoted").count() == 1 and page.locator(".pc-para.pc-target").count() == 0
                marks = page.locator(".pc-pagemark")
                assert [m.inner_text().strip().lower() for m in marks.all()] == [f"page {n}" for n in (1, 2, 3, 4)]
                assert page.get_by_role("button", name="Original file (PDF)").count() == 1
                assert "row=" in page.url
            finally:
                browser.close()
    finally:
        stop_server(server)
        log.close()
