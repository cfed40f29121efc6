"""The UI's hardening against a hostile visitor or a broken configuration (issue 22), on real servers.

- A secrets file that exists but cannot be read stops every page (fail closed), in AppTest and in
  chromium against `streamlit run`; sign-in is off only when no `[auth]` section exists.
- DNS rebinding: the shipped `.streamlit/config.toml` allows only loopback Host names on the websocket
  every page is served over; a team's own list (`--server.allowedHosts`, as `make run
  RAG_ALLOWED_HOSTS=...` passes it) replaces it.
- A page that fails shows the visitor no traceback or server path; the server's log has them.
- Streamlit's upload endpoint refuses a PUT without the XSRF token (the proxy rule in SECURITY.md is
  not tested: no nginx here).
- The Library reads only the recent part of a large audit log.

The servers run without an index (the pages under test stop before one is needed), so no model loads.
"""

from __future__ import annotations

import json
import logging
import socket
import tracemalloc

import pytest
import streamlit
from streamlit import config
from streamlit.runtime.secrets import Secrets
from streamlit.testing.v1 import AppTest

from tests.browser import ARGS, CHROMIUM, ROOT, free_port, start_app, stop_server, wait_healthy

APP = str(ROOT / "ui" / "main.py")
# An unterminated string: the kind of slip that made the app read "no [auth]" and let everyone in as admin.
BROKEN_SECRETS = '[auth]\nredirect_uri = "http://localhost:8501/oauth2callback\ncookie_secret = "x"\n'
UNREADABLE = "secrets file cannot be read"


@pytest.fixture()
def secrets_file(monkeypatch, tmp_path):
    """Point Streamlit at one secrets file of the test's (fresh `st.secrets`, so nothing is cached)."""
    path = tmp_path / "secrets.toml"
    saved = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    monkeypatch.setattr(streamlit, "secrets", Secrets())
    yield path
    config.set_option("secrets.files", saved)


def test_sign_in_is_off_only_without_an_auth_section(secrets_file):
    from ui import state

    assert state.auth_enabled() is False  # no file
    secrets_file.write_text('other = "value"\n')
    streamlit.secrets._reset()
    assert state.auth_enabled() is False  # a file without [auth]
    secrets_file.write_text('[auth]\ncookie_secret = "x"\n')
    streamlit.secrets._reset()
    assert state.auth_enabled() is True
    for broken in (BROKEN_SECRETS, b'[auth]\ncookie_secret = "\xff"\n'):
        (secrets_file.write_bytes if isinstance(broken, bytes) else secrets_file.write_text)(broken)
        streamlit.secrets._reset()
        with pytest.raises(state.SecretsUnreadable, match=str(secrets_file)):
            state.auth_enabled()


def test_an_unreadable_secrets_file_stops_every_page(secrets_file, monkeypatch, tmp_path, caplog):
    import ui.state

    secrets_file.write_text(BROKEN_SECRETS)
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setattr(ui.state, "EMBEDDER_FACTORY", lambda: pytest.fail("no page may run"))
    with caplog.at_level(logging.ERROR):
        at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    assert any(UNREADABLE in e.value for e in at.error)
    assert str(secrets_file) not in " ".join(e.value for e in at.error)  # the path is for the log, not visitors
    assert not at.chat_input and not at.file_uploader and not at.button
    assert not any("Single local user" in c.value for c in at.sidebar.caption)
    assert any("is not valid TOML" in r.getMessage() and str(secrets_file) in r.getMessage() for r in caplog.records)


# ---- real servers ---------------------------------------------------------------------------------------------


def _server(tmp_path_factory, name: str, env: dict[str, str], *options: str):
    root = tmp_path_factory.mktemp(name)
    env = {
        "RAG_INDEX": str(root / "index"),
        "RAG_CORPUS": str(root / "corpus"),
        "RAG_CONVERSATIONS": str(root / "conversations"),
        "RAG_AUDIT_LOG": str(root / "audit.jsonl"),
        **env,
    }
    port = free_port()
    log = open(root / "streamlit.log", "wb")
    server = start_app(port, env, log, *options)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        yield port, root
    finally:
        stop_server(server)
        log.close()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory):
    """The shipped config, and a limit setting that makes the chat page fail."""
    yield from _server(tmp_path_factory, "plain", {"RAG_CONVERSATION_DAYS": "soon"})


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    """A team's host list, and a secrets file with [auth] that cannot be parsed."""
    root = tmp_path_factory.mktemp("team-secrets")
    (root / "secrets.toml").write_text(BROKEN_SECRETS)
    yield from _server(
        tmp_path_factory,
        "team",
        {},
        "--secrets.files",
        str(root / "secrets.toml"),
        "--server.allowedHosts",
        "localhost",
        "--server.allowedHosts",
        "paracite.team.example",
    )


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def websocket_opens(port: int, host: str) -> bool:
    """Whether the app's websocket opens for a page at http://`host`:`port` (Host and Origin name it), the
    connection itself going to 127.0.0.1, as a rebound DNS name's would."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        with connect(f"ws://{host}:{port}/_stcore/stream", sock=sock, origin=f"http://{host}:{port}", open_timeout=10):
            return True
    except InvalidStatus as e:
        assert e.response.status_code == 403
        return False
    finally:
        sock.close()


def test_dns_rebinding_is_refused_by_the_shipped_config(plain_server):
    port, root = plain_server
    assert websocket_opens(port, "127.0.0.1") and websocket_opens(port, "localhost")
    assert not websocket_opens(port, "evil.example")
    assert not websocket_opens(port, "paracite.team.example")
    assert "Rejecting WebSocket connection" in (root / "streamlit.log").read_text()


def test_a_team_names_its_own_hosts(team_server):
    port, _ = team_server
    assert websocket_opens(port, "paracite.team.example") and websocket_opens(port, "localhost")
    assert not websocket_opens(port, "evil.example")
    assert not websocket_opens(port, "127.0.0.1")  # the team's list replaces the shipped one


def test_an_upload_without_the_xsrf_token_is_refused(plain_server):
    """What of the upload endpoint can be tested here (SECURITY.md: the proxy rule for the rest): a PUT
    from a client that never opened the page, with no XSRF cookie and token, is refused unread."""
    import urllib.error
    import urllib.request

    port, _ = plain_server
    body = b"--b\r\nContent-Disposition: form-data; name=file; filename=a.txt\r\n\r\n" + b"x" * 1024 + b"\r\n--b--\r\n"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_stcore/upload_file/{'0' * 32}/file",
        data=body,
        method="PUT",
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_a_failing_page_shows_no_traceback(plain_server, chromium):
    port, root = plain_server
    page = chromium.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_test_id("stException").wait_for(timeout=60_000)
        text = page.inner_text("body")
    finally:
        page.close()
    assert "This app has encountered an error" in text
    for leak in ("Traceback", "RAG_CONVERSATION_DAYS", "BadArgument", "transcript.py", str(ROOT)):
        assert leak not in text
    log = (root / "streamlit.log").read_text()
    assert "RAG_CONVERSATION_DAYS" in log and "Traceback" in log  # the operator still sees what went wrong


def test_an_unreadable_secrets_file_lets_nobody_in(team_server, chromium):
    port, root = team_server
    page = chromium.new_page()
    try:
        for path in ("", "/library"):
            page.goto(f"http://localhost:{port}{path}")
            page.get_by_text(UNREADABLE).wait_for(timeout=60_000)
            assert page.get_by_test_id("stChatInput").count() == 0
            assert page.get_by_test_id("stFileUploader").count() == 0
            assert page.get_by_test_id("stSidebarNav").count() == 0
            assert page.get_by_text("Single local user").count() == 0
    finally:
        page.close()
    assert "is not valid TOML" in (root / "streamlit.log").read_text()


# ---- the audit log --------------------------------------------------------------------------------------------


def test_the_library_reads_only_the_recent_part_of_a_large_audit_log(tmp_path):
    from app import audit
    from app.auth import LOCAL

    log = tmp_path / "audit.jsonl"
    old = json.dumps({"action": "upload", "doc": "old-memo", "outcome": "done", "user": "someone"}) + "\n"
    with open(log, "w") as f:
        f.write(old * 100_000)  # about 8 MB of history: read whole, its entries would hold far more than 16 MiB
    audit.record(log, LOCAL, "upload", "memo")
    audit.record(log, LOCAL, "delete", "old-memo")
    tracemalloc.start()
    try:
        added = audit.added_by(log)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert set(added) == {"memo"} and added["memo"]["user"] == LOCAL.user
    assert peak < 16 * audit.RECENT_BYTES, f"{peak:,} bytes held to read the log's recent part"
    # Cut at any point, the part read skips the torn first line and keeps whole ones.
    whole = len(log.read_bytes())
    everything = audit.read(log)
    for max_bytes in (10, len(old) - 1, len(old), len(old) + 1, whole, whole + 10):
        entries = audit.read_recent(log, max_bytes)
        assert entries == everything[len(everything) - len(entries) :]
