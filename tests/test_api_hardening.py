"""`rag serve` against issue 22's findings, in-process (FastAPI's TestClient) and without the model.

The checks here happen before any engine or model is needed (the schema, callers, paths, the docs
pages), so the app is built over an empty folder with a stand-in embedder: the whole file runs in
seconds. tests/test_serve.py drives the real model over real HTTP.
"""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient

from app import audit
from app.limits import (
    HISTORY_MAX_CHARS,
    HISTORY_MAX_TURNS,
    HISTORY_TURN_MAX_CHARS,
    QUESTION_MAX_CHARS,
    fit_history,
    history_problem,
)
from app.serve import corpus_paths, create_app, load_tokens
from rag.embed.embedder import DIMENSION, MODEL_NAME
from rag.errors import BadArgument

TOKEN = "editor-token-0123456789"


class NoModel:
    """Stands in for `rag.embed.embedder.Embedder`: these requests are refused before any model is used."""

    model = None
    query_encoder = None
    name = MODEL_NAME
    dimension = DIMENSION


def make_app(tmp_path, tokens: bool = False, **kwargs):
    tokens_file = tmp_path / "api-tokens.toml"
    tokens_file.write_text(
        f'[[tokens]]\nuser = "ed"\nrole = "editor"\nsha256 = "{hashlib.sha256(TOKEN.encode()).hexdigest()}"\n',
        encoding="utf-8",
    )
    (tmp_path / "corpus").mkdir(exist_ok=True)
    return create_app(
        tmp_path / "index",
        embedder=NoModel(),
        corpus_dir=tmp_path / "corpus",
        backends={},
        tokens=load_tokens(tokens_file) if tokens else None,
        **kwargs,
    )


@pytest.fixture()
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    # TestClient's own host is "testclient"; as loopback, no tokens file serves it as the local admin.
    return TestClient(make_app(tmp_path), client=("127.0.0.1", 50000), base_url="http://127.0.0.1")


# ---- finding 4: the history cannot get around the question's cap -----------------------------------------------


def test_the_limits_are_one_module_the_ui_can_import():
    from app import serve_schema

    assert serve_schema.MAX_QUESTION_CHARS == QUESTION_MAX_CHARS == 2000
    assert history_problem([{"role": "user", "content": "q"}] * HISTORY_MAX_TURNS) is None


@pytest.mark.parametrize(
    "history, limit",
    [
        ([{"role": "user", "content": "How many cars? " * 1333}], "QUESTION_MAX_CHARS"),  # 19,995 characters
        ([{"role": "assistant", "content": "x" * (HISTORY_TURN_MAX_CHARS + 1)}], "HISTORY_TURN_MAX_CHARS"),
        ([{"role": "user", "content": "q?"}] * (HISTORY_MAX_TURNS + 1), "HISTORY_MAX_TURNS"),
        (
            [{"role": "assistant", "content": "x" * HISTORY_TURN_MAX_CHARS}]
            * (HISTORY_MAX_CHARS // HISTORY_TURN_MAX_CHARS + 1),
            "HISTORY_MAX_CHARS",
        ),
    ],
)
def test_a_history_over_a_limit_is_refused_with_a_message_naming_it(client, history, limit):
    response = client.post("/ask", json={"question": "And what about Korea?", "history": history})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["type"] == "InvalidRequest" and limit in error["message"]


def test_a_question_over_the_cap_is_refused_and_one_at_the_cap_is_not(client):
    response = client.post("/ask", json={"question": "x" * (QUESTION_MAX_CHARS + 1)})
    assert response.status_code == 422 and "2000" in response.json()["error"]["message"]
    at_cap = client.post(
        "/ask",
        json={"question": "x" * QUESTION_MAX_CHARS, "history": [{"role": "user", "content": "y" * QUESTION_MAX_CHARS}]},
    )
    assert at_cap.status_code == 503 and at_cap.json()["error"]["type"] == "IndexNotFound"  # past the limits


def test_fit_history_keeps_the_most_recent_turns_within_every_limit():
    long = [{"role": "user", "content": f"question {n:02} " + "x" * 1985} for n in range(100)]
    fitted = fit_history(long)
    assert history_problem(fitted) is None and fitted[-1] == long[-1]
    assert len(fitted) == HISTORY_MAX_CHARS // len(long[0]["content"])
    assert fit_history([{"role": "user", "content": "z" * 30_000}])[0]["content"] == "z" * QUESTION_MAX_CHARS


# ---- finding 11: a long ingest path, failed sign-ins --------------------------------------------------------------


def test_a_5000_character_ingest_path_is_a_400_not_a_500(client, tmp_path):
    for path in ["a" * 5000, "sub/" * 1250, "b" * 300 + ".md"]:
        response = client.post("/ingest", json={"paths": [path]})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "BadArgument" and "too long" in error["message"]
    with pytest.raises(BadArgument, match="too long"):
        corpus_paths(tmp_path / "corpus", ["a" * 5000])


def test_failed_api_sign_ins_are_audited_and_rate_limited_per_address(tmp_path, monkeypatch):
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("RAG_AUDIT_LOG", str(log))
    app = make_app(tmp_path, tokens=True, max_failed_logins=3)
    attacker = TestClient(app, client=("203.0.113.9", 40000))
    other = TestClient(app, client=("198.51.100.7", 40000))
    for n in range(3):
        response = attacker.get("/documents", headers={"Authorization": f"Bearer guess-{n}"})
        assert response.status_code == 401 and response.json()["error"]["type"] == "NotAuthenticated"
    refused = attacker.get("/documents", headers={"Authorization": f"Bearer {TOKEN}"})  # even a right one, now
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "TooManyFailedSignIns"
    assert int(refused.headers["retry-after"]) >= 1 and "60" in refused.json()["error"]["message"]
    # Another address is not held up, and a request with no token at all is not a guess.
    assert other.get("/documents").status_code == 401
    assert (
        other.post("/ingest", json={"paths": ["x" * 5000]}, headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 400
    )
    entries = [e for e in audit.read(log) if e["action"] == "api sign-in"]
    assert [(e["user"], e["outcome"]) for e in entries] == [("client 203.0.113.9", "refused")] * 3
    assert "unknown bearer token" in entries[0]["detail"] and TOKEN not in log.read_text()
    assert "refused for 60 s" in entries[-1]["detail"]


def test_the_failure_window_slides(tmp_path):
    from app.serve_callers import SignInThrottle

    now = [1000.0]
    throttle = SignInThrottle(max_failures=2, window_s=60, clock=lambda: now[0])
    assert throttle.failed("a") == 1 and throttle.failed("a") == 2 and throttle.retry_after("a") == 60
    now[0] += 30
    assert throttle.retry_after("a") == 30 and throttle.retry_after("b") == 0
    now[0] += 31
    assert throttle.retry_after("a") == 0 and throttle.failed("a") == 1


# ---- finding 12: the API docs work offline -------------------------------------------------------------------------


def test_the_api_docs_load_nothing_from_another_site(client):
    """FastAPI's /docs and /redoc pull Swagger UI and ReDoc from a CDN without SRI: not served; the schema is."""
    schema = client.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "paracite"
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = client.get(page)
        assert response.status_code == 404 and response.json()["error"]["type"] == "NotFound"
        assert "cdn" not in response.text
