"""Teams end to end: a real OpenID Connect provider, the real app, headless chromium.

`oidc-provider-mock` runs in a thread of the test session on a free port, with two users; the app
runs as `streamlit run` with a temporary secrets file (`--secrets.files`, an [auth] section
pointing at the provider) and a temporary roles file ($RAG_ROLES): the editor by email, everyone
else at the domain a reader. In chromium: a visitor sees only the sign-in page; the editor signs in
through the provider's form, uploads a document, asks a question and signs out; the reader signs in,
gets no upload form, is refused the editor's conversation by its URL, and signs out. The audit log
records the upload and the refusal. Screenshots: evals/out/team-*.png (git-ignored).
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser import ARGS, CHROMIUM, QUESTION, ask, free_port, start_app, stop_server, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
EDITOR = ("ed-1", "editor@team.example")
READER = ("rd-1", "reader@team.example")
NOTE = b"The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"
ROLES = '[editor]\nemails = ["editor@team.example"]\n\n[reader]\ndomains = ["team.example"]\n'


@pytest.fixture(scope="module")
def team_app(tmp_path_factory, corpus_index):
    """(app url, its folder): the app with sign-in on, against the provider, on localhost."""
    from oidc_provider_mock import User, run_server_in_thread

    root = tmp_path_factory.mktemp("team")
    shutil.copytree(corpus_index, root / "index")
    (root / "corpus").mkdir()
    (root / "roles.toml").write_text(ROLES)
    users = [User(sub=sub, claims={"email": email, "email_verified": True}) for sub, email in (EDITOR, READER)]
    with run_server_in_thread(user_claims=users) as provider:
        port = free_port()
        url = f"http://localhost:{port}"  # the redirect URI's host, so the identity cookie comes back
        (root / "secrets.toml").write_text(
            "[auth]\n"
            f'redirect_uri = "{url}/oauth2callback"\n'
            f'cookie_secret = "{secrets.token_hex(32)}"\n'
            'client_id = "paracite-test"\n'
            f'client_secret = "{secrets.token_hex(16)}"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n'
        )
        env = {
            "RAG_INDEX": str(root / "index"),
            "RAG_CORPUS": str(root / "corpus"),
            "RAG_ROLES": str(root / "roles.toml"),
            "RAG_AUDIT_LOG": str(root / "audit.jsonl"),
        }
        log = open(root / "streamlit.log", "wb")
        server = start_app(port, env, log, "--secrets.files", str(root / "secrets.toml"))
        try:
            wait_healthy(url, server)
            yield url, root
        finally:
            stop_server(server)
            log.close()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def shot(page, name: str) -> None:
    out = ROOT / "evals" / "out"
    out.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let the last rerun settle
    page.screenshot(path=str(out / f"team-{name}.png"), full_page=True)


def sign_in(page, url: str, sub: str, email: str) -> None:
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=sub).click()  # the provider's form: one button per known user
    page.get_by_text(f"Signed in as {email}").wait_for(timeout=90_000)


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("button", name="End session").click()  # the provider's end-session form
    page.get_by_text("Sign in to continue.").wait_for(timeout=60_000)


def audit_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "audit.jsonl").read_text().splitlines()]


def test_nothing_but_the_sign_in_page_without_signing_in(team_app, chromium):
    url, _ = team_app
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    try:
        for path in ("", "/library", "/reader?doc=caixin-commentary", "/?c=" + "0" * 32):
            page.goto(url + path)
            page.get_by_text("Sign in to continue.").wait_for(timeout=60_000)
            assert page.get_by_test_id("stChatInput").count() == 0
            assert page.get_by_test_id("stFileUploader").count() == 0
            assert page.get_by_text("China").count() == 0  # no document text, no navigation
            assert page.get_by_test_id("stSidebarNav").count() == 0
        shot(page, "sign-in")
    finally:
        page.close()


def test_editor_and_reader(team_app, chromium, tmp_path):
    url, root = team_app
    editor = chromium.new_context(viewport={"width": 1300, "height": 1000})
    try:
        page = editor.new_page()
        sign_in(page, url, *EDITOR)
        assert page.get_by_text("editor@team.example · editor").count() == 1
        # The editor uploads: the form is there, the document goes in, and the log says who.
        page.goto(f"{url}/library")
        page.get_by_test_id("stFileUploader").wait_for(timeout=60_000)
        memo = tmp_path / "zephyrine-memo.txt"
        memo.write_bytes(NOTE)
        page.locator("[data-testid=stFileUploader] input[type=file]").set_input_files(str(memo))
        page.get_by_role("button", name="Add to library").click()
        page.get_by_text("Added or updated: zephyrine-memo").wait_for(timeout=120_000)
        uploads = [e for e in audit_lines(root) if e["action"] == "upload"]
        assert [(e["doc"], e["email"], e["role"], e["outcome"]) for e in uploads] == [
            ("zephyrine-memo", EDITOR[1], "editor", "done")
        ]
        shot(page, "library-editor")
        # The editor's conversation, listed in their sidebar.
        page.goto(url)
        ask(page, QUESTION)
        cid = parse_qs(urlparse(page.url).query)["c"][0]
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text(QUESTION[:30]).first.wait_for(timeout=30_000)  # the open one is marked, as text
        sidebar.get_by_role("button", name="New conversation").click()
        page.wait_for_function("cid => !location.search.includes(cid)", arg=cid, timeout=30_000)
        page.locator("[data-testid=stChatMessage]").first.wait_for(state="detached", timeout=30_000)
        sidebar.get_by_role("button", name=QUESTION[:30]).first.click()  # back to it from the list
        page.wait_for_function("cid => location.search.includes(cid)", arg=cid, timeout=30_000)
        page.locator("[data-testid=stChatMessage]", has_text=QUESTION).wait_for(timeout=30_000)
        shot(page, "chat-editor")
        sign_out(page)
        assert page.get_by_test_id("stChatInput").count() == 0
    finally:
        editor.close()

    reader = chromium.new_context(viewport={"width": 1300, "height": 1000})
    try:
        page = reader.new_page()
        sign_in(page, url, *READER)
        # No upload or delete form for a reader, and the page says why.
        page.goto(f"{url}/library")
        page.get_by_text("You are a reader").wait_for(timeout=60_000)
        assert page.get_by_test_id("stFileUploader").count() == 0
        assert page.get_by_role("button", name="Delete").count() == 0
        shot(page, "library-reader")
        # The editor's conversation by its URL: refused, not shown, and logged.
        page.goto(f"{url}/?c={cid}")
        page.get_by_text("belongs to another user").wait_for(timeout=60_000)
        assert page.get_by_text(QUESTION).count() == 0
        assert f"c={cid}" not in page.url
        refused = [e for e in audit_lines(root) if e["action"] == "open conversation"]
        assert [(e["email"], e["outcome"]) for e in refused] == [(READER[1], "refused")]
        assert cid in refused[0]["detail"]
        # The reader may still ask, and their conversation is their own.
        ask(page, QUESTION)
        assert parse_qs(urlparse(page.url).query)["c"][0] != cid
        sign_out(page)
    finally:
        reader.close()
