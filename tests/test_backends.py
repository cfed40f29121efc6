"""app.backends and the key rule: the operator's backends file is checked line by line, and no key
reaches an address nobody configured for it (checked over real HTTP, against a server on 127.0.0.1
that records what arrives)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.backends import (
    Backend,
    key_env_for,
    load_backends,
    normalize_address,
    parse_backends,
)
from app.chat_models import make_answerer, make_chat_model, resolve_backend
from rag.errors import BackendsConfigError, BadArgument
from rag.query import Query

OPENAI_SECRET = "sk-operator-openai-0123456789"
OLLAMA_SECRET = "ollama-operator-key-0123456789"
BODY_SECRET = "internal stack trace at /srv/secret-path"

GOOD = """\
# the operator's backends
[backends.llama]
kind = "ollama"
model = "llama3.2"
address = "http://localhost:11434/"

[backends.gpt]
kind = "openai"
model = "gpt-4o-mini"
address = "https://api.openai.com/v1"
key_env = "OPENAI_API_KEY"

[backends.local]
kind = "local"
"""


@pytest.fixture
def recorder():
    """A server on 127.0.0.1 that records each request's path and headers and answers 500 with a telling body."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
            body = json.dumps({"error": BODY_SECRET}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()


@pytest.fixture
def keys(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    monkeypatch.setenv("OLLAMA_API_KEY", OLLAMA_SECRET)
    for name in ("OPENAI_BASE_URL", "OLLAMA_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RAG_BACKENDS", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")


def _call(model) -> None:
    """The call fails (the recorder answers 500, or nothing listens): whichever client error, only the request counts."""
    with pytest.raises(Exception):  # noqa: B017
        model.invoke("hello")


def _secrets_in(seen: list[dict]) -> list[str]:
    return [
        f"{r['path']}: {k}={v}"
        for r in seen
        for k, v in r["headers"].items()
        if OPENAI_SECRET in v or OLLAMA_SECRET in v
    ]


# --- the config file -----------------------------------------------------------------------------------------


def test_a_good_file_gives_named_backends_in_order():
    backends = parse_backends(GOOD)
    assert list(backends) == ["llama", "gpt", "local"]
    assert backends["llama"] == Backend("llama", "ollama", "llama3.2", "http://localhost:11434", None)
    assert backends["gpt"].spec == "openai:gpt-4o-mini" and backends["gpt"].key_env == "OPENAI_API_KEY"
    assert backends["local"] == Backend("local", "local")
    assert "OPENAI_API_KEY" in repr(backends["gpt"]) and OPENAI_SECRET not in repr(backends["gpt"])


@pytest.mark.parametrize(
    "text,line,words",
    [
        ('[backends.x]\nkind = "ollama"\nmodel = "m"\naddress = "http://h:1"\n[backends.y\n', 5, "not valid TOML"),
        ('[backends.x]\nkind = "ollam"\nmodel = "m"\naddress = "http://h:1"\n', 2, "kind 'ollam'"),
        ('[backends.x]\nkind = "ollama"\naddress = "http://h:1"\n', 1, "has no model"),
        ('[backends.x]\nkind = "openai"\nmodel = "m"\n', 1, "has no address"),
        ('[backends.x]\nkind = "openai"\nmodel = "m"\naddress = "ftp://h/"\n', 4, "not an http(s) address"),
        ('[backends.x]\nkind = "openai"\nmodel = "m"\naddress = "https://u:pw@h/v1"\n', 4, "carries credentials"),
        (
            '[backends.x]\nkind = "openai"\nmodel = "m"\naddress = "https://h/v1"\napi_key = "sk-1"\n',
            5,
            "key's value never goes in this file",
        ),
        (
            '[backends.x]\nkind = "openai"\nmodel = "m"\naddress = "https://h/v1"\nkey_env = "$KEY"\n',
            5,
            "must name an environment variable",
        ),
        ('\n[backends.x]\nkind = "local"\nmodel = "m"\n', 4, "does not apply to kind 'local'"),
        ('[backends.local]\nkind = "openai"\nmodel = "m"\naddress = "https://h/v1"\n', 2, "named 'local'"),
        ('[backends."a:b"]\nkind = "local"\n', 1, "name that cannot be used"),
        ('[backends.x]\nkind = "ollama"\nmodel = 3\naddress = "http://h:1"\n', 3, "must be a string"),
        ('[servers.x]\nkind = "local"\n', 1, "unknown top-level entry 'servers'"),
    ],
)
def test_a_bad_file_names_the_line_the_field_and_the_fix(text, line, words):
    with pytest.raises(BackendsConfigError) as caught:
        parse_backends(text, "backends.toml")
    error = caught.value
    assert error.line == line, str(error)
    assert words in str(error) and f"backends.toml, line {line}" in str(error) and "To fix it" in str(error)


def test_a_named_file_that_is_missing_is_an_error_but_no_file_is_no_backends(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAG_BACKENDS", raising=False)
    assert load_backends() == {}
    monkeypatch.setenv("RAG_BACKENDS", str(tmp_path / "missing.toml"))
    with pytest.raises(BackendsConfigError, match="missing.toml: cannot be read"):
        load_backends()
    (tmp_path / ".paracite").mkdir()
    (tmp_path / ".paracite" / "backends.toml").write_text(GOOD)
    monkeypatch.delenv("RAG_BACKENDS")
    assert list(load_backends()) == ["llama", "gpt", "local"]


def test_addresses_compare_in_one_spelling():
    assert normalize_address("http://127.0.0.1:8000/v1/") == normalize_address("127.0.0.1:8000/v1")
    assert normalize_address("HTTPS://API.openai.com:443/v1") == "https://api.openai.com/v1"


# --- the key rule ---------------------------------------------------------------------------------------------


def test_the_standard_key_goes_only_to_its_own_configured_address(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    assert key_env_for("openai", "https://api.openai.com/v1", {}) == "OPENAI_API_KEY"
    assert key_env_for("openai", "http://127.0.0.1:9/v1", {}) is None
    assert key_env_for("ollama", "http://localhost:11434", {}) is None  # no OLLAMA_HOST: nobody named a home
    monkeypatch.setenv("OLLAMA_HOST", "https://ollama.com")
    assert key_env_for("ollama", "https://ollama.com/", {}) == "OLLAMA_API_KEY"
    assert key_env_for("ollama", "http://localhost:11434", {}) is None
    configured = {"mine": Backend("mine", "openai", "m", "http://127.0.0.1:9/v1", "MY_KEY")}
    assert key_env_for("openai", "127.0.0.1:9/v1/", configured) == "MY_KEY"


@pytest.mark.parametrize(
    "spec,path", [("ollama:llama3.2", "/api/chat"), ("openai:gpt-4o-mini", "/v1/chat/completions")]
)
def test_no_key_reaches_an_address_nobody_configured(recorder, keys, spec, path):
    """The CLI's ad-hoc `--llm SPEC --base-url URL`: the request arrives, but without the operator's keys
    (ollama-python would add $OLLAMA_API_KEY by itself; langchain-openai would send $OPENAI_API_KEY)."""
    url, seen = recorder
    base = url + ("/v1" if spec.startswith("openai") else "")
    _call(make_chat_model(spec, base, timeout=5))
    assert seen and seen[0]["path"] == path
    assert _secrets_in(seen) == []


def test_a_configured_backend_gets_exactly_its_own_key(recorder, keys, tmp_path, monkeypatch):
    url, seen = recorder
    monkeypatch.setenv("TEAM_OLLAMA_KEY", "team-key-0123456789")
    (tmp_path / "b.toml").write_text(
        f'[backends.team]\nkind = "ollama"\nmodel = "m"\naddress = "{url}"\n'
        f'key_env = "TEAM_OLLAMA_KEY"\n'
        f'[backends.open]\nkind = "ollama"\nmodel = "m"\naddress = "{url}/x"\n'
    )
    monkeypatch.setenv("RAG_BACKENDS", str(tmp_path / "b.toml"))
    _call(make_chat_model("team", timeout=5))
    assert seen[-1]["headers"]["authorization"] == "Bearer team-key-0123456789"
    _call(make_chat_model("open", timeout=5))  # configured without a key: none, not $OLLAMA_API_KEY
    assert "authorization" not in seen[-1]["headers"]
    # The CLI reaching the configured address by spec gets the key configured for it.
    _call(make_chat_model("ollama:m", url, timeout=5))
    assert seen[-1]["headers"]["authorization"] == "Bearer team-key-0123456789"
    assert _secrets_in(seen) == []
    with pytest.raises(BadArgument, match="drop --base-url"):
        resolve_backend("team", "http://127.0.0.1:9")
    with pytest.raises(BadArgument, match="name of a backend configured"):
        resolve_backend("nosuch")


def test_the_openai_key_still_goes_to_its_configured_server(recorder, keys, monkeypatch):
    url, seen = recorder
    monkeypatch.setenv("OPENAI_BASE_URL", url + "/v1")
    _call(make_chat_model("openai:gpt-4o-mini", timeout=5))
    assert seen[-1]["headers"]["authorization"] == f"Bearer {OPENAI_SECRET}"
    _call(make_chat_model("openai:gpt-4o-mini", url + "/v1", send_key=False, timeout=5))
    assert seen[-1]["headers"]["authorization"] == "Bearer not-needed"


def test_a_backend_error_body_goes_to_the_log_not_to_the_answer(recorder, keys, engine, caplog):
    url, _ = recorder
    answerer = make_answerer("ollama:llama3.2", engine.embedder, engine.titles, base_url=url, timeout=5)
    question = "What tariff did Turkey impose on Chinese cars?"
    answer = answerer.answer(Query.plain(question), engine.retriever.search(question, top_k=2))
    assert answer.answerer == "extractive (fallback from ollama:llama3.2)"
    shown = " ".join(answer.notes) + answer.fallback.detail
    assert "HTTP 500" in shown and BODY_SECRET not in shown
    assert any(BODY_SECRET in r.getMessage() for r in caplog.records)  # the operator can still see it


# --- the UI: a visitor picks a configured backend by name, and nothing else -------------------------------------

APP = str(__import__("pathlib").Path(__file__).resolve().parent.parent / "ui" / "main.py")
QUESTION = "What tariff did Turkey impose on Chinese cars?"


@pytest.fixture
def ui_env(tmp_path, corpus_index, embedder, keys, monkeypatch):
    import shutil

    import ui.state

    shutil.copytree(corpus_index, tmp_path / "index")
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("RAG_CONVERSATIONS", str(tmp_path / "conversations"))
    monkeypatch.setattr(ui.state, "EMBEDDER_FACTORY", lambda: embedder)
    return tmp_path


def _app(**state):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def _ask(at, question=QUESTION):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at.session_state["messages"][-1]


def _page_text(at) -> str:
    return " ".join(e.value for kind in ("caption", "markdown", "info", "warning", "error") for e in getattr(at, kind))


def test_the_sidebar_offers_only_configured_backends_by_name(ui_env, recorder, monkeypatch):
    url, seen = recorder
    monkeypatch.setenv("TEAM_OLLAMA_KEY", "team-key-0123456789")
    (ui_env / "b.toml").write_text(
        f'[backends.team]\nkind = "ollama"\nmodel = "llama3.2"\naddress = "{url}"\nkey_env = "TEAM_OLLAMA_KEY"\n'
    )
    monkeypatch.setenv("RAG_BACKENDS", str(ui_env / "b.toml"))
    at = _app()
    assert at.selectbox(key="answerer").options == ["extractive", "team"]
    assert not at.text_input  # no field to type an address or a model name into
    at.selectbox(key="answerer").set_value("team").run()
    answer = _ask(at)
    assert [r["path"] for r in seen] == ["/api/chat"]  # the configured server, with its own key only
    assert seen[0]["headers"]["authorization"] == "Bearer team-key-0123456789"
    assert answer.answerer == "extractive (fallback from team)"
    assert "HTTP 500" in _page_text(at) and BODY_SECRET not in _page_text(at)


@pytest.mark.parametrize("answerer", ["ollama", "openai", "ollama:llama3.2", "openai:gpt-4o-mini", "URL"])
def test_crafted_session_state_cannot_point_the_server_at_a_url(ui_env, recorder, answerer):
    """What the old sidebar kept in session state (kind, model, address), set by hand: all ignored."""
    url, seen = recorder
    at = _app(answerer=url if answerer == "URL" else answerer, llm_model="gpt-4o-mini", llm_url=url + "/v1")
    assert at.session_state["answerer"] == "extractive"
    answer = _ask(at)
    assert answer.answerer == "extractive" and not answer.abstained
    assert seen == []  # the server contacted nothing


def test_a_broken_backends_file_offers_extractive_and_hides_its_details(ui_env, monkeypatch):
    (ui_env / "b.toml").write_text('[backends.x]\nkind = "ollama"\nmodel = "m"\naddress = "https://u:pw@h/"\n')
    monkeypatch.setenv("RAG_BACKENDS", str(ui_env / "b.toml"))
    at = _app()
    assert at.selectbox(key="answerer").options == ["extractive"]
    assert any("backends file has an error" in w.value for w in at.warning)
    assert "pw@" not in _page_text(at) and "b.toml" not in _page_text(at)


def test_a_hostile_answerer_name_shows_as_text(ui_env):
    """Issue 12, finding 13: the answerer caption (and the notes that name it) are Markdown-escaped."""
    from dataclasses import replace

    at = _app()
    answer = _ask(at)
    hostile = "openai:<img src=x onerror=alert(1)> **bold** :red[loud] [link](javascript:alert(1))"
    at.session_state["messages"][-1] = replace(
        answer, answerer=hostile, notes=(*answer.notes, f"fell back from {hostile}")
    )
    at.run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.chat_message[-1].caption]
    caption = next(c for c in captions if "answered in" in c)
    shown_name = caption.split(" · answered in")[0]
    assert shown_name.replace("\\", "") == hostile  # reads as the very text ...
    assert not re.search(r"(?<!\\)[<>*\[\]():]", shown_name), shown_name  # ... with no live Markdown or HTML
    note = next(c for c in captions if c.startswith("fell back from"))
    assert "\\<img" in note and not re.search(r"(?<!\\)[<>*\[\]]", note), note
