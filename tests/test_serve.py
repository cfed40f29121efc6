"""`rag serve` over real HTTP: a real uvicorn on a free port, the real model and a real index of corpus/.

Three servers for the module: `server` (no tokens file: loopback callers are the local admin) over
the session's corpus index; `guarded` (a tokens file) over a copy of it with a corpus folder of its
own, for roles and ingest; `empty` over a folder with no index yet.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn
from click.testing import CliRunner

from app import audit
from app.auth import LOCAL, Principal, Role
from app.cli import cli
from app.serve import MAX_BODY_BYTES, MAX_TOP_K, corpus_paths, create_app, identify, load_tokens
from rag.errors import ApiTokensConfigError, BadArgument, NotAllowed, NotAuthenticated
from rag.index.lock import write_lock
from tests.browser import free_port

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
QUESTIONS = [
    "How many vehicles did China export in 2023?",
    "What share of their foreign sales do Chinese companies produce abroad?",
    "Who won the 2022 World Cup?",
]  # the last one abstains
TOKENS = {"reader": "reader-token-0123456789", "editor": "editor-token-0123456789"}
NOTE = (
    "# Zorblat Motors\n\nZorblat Motors exported 12,345 hovercraft in 2031, most of them to Lunar Base Alpha.\n\n"
    "The hovercraft run on compressed kelp.\n"
)


@contextmanager
def running(app):
    """`app` under a real uvicorn, on a free port of 127.0.0.1, in a thread; yields its address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def call(
    url: str,
    method: str = "GET",
    body=None,
    token: str | None = None,
    headers: dict | None = None,
    data: bytes | None = None,
) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one real HTTP request; an error status is returned, not raised."""
    headers = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def call_json(url: str, method: str = "GET", body=None, **kwargs) -> tuple[int, dict]:
    status, _, raw = call(url, method, body, **kwargs)
    return status, json.loads(raw)


def without_timings(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "timings_ms"}


@pytest.fixture(scope="module")
def server(corpus_index, embedder):
    with running(create_app(corpus_index, embedder=embedder, corpus_dir=CORPUS, backends={})) as url:
        yield url


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, corpus_index, embedder):
    """A server with a tokens file, over a copy of the corpus index and a corpus folder holding one new note."""
    base = tmp_path_factory.mktemp("guarded")
    index = base / "index"
    shutil.copytree(corpus_index, index, symlinks=True)
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / "zorblat-note.md").write_text(NOTE, encoding="utf-8")
    (base / "secret.md").write_text("# Secret\n\nThe vault code is 0000.\n", encoding="utf-8")
    tokens_file = base / "api-tokens.toml"
    tokens_file.write_text(
        "".join(
            f'[[tokens]]\nuser = "{role}-user"\nrole = "{role}"\n'
            f'sha256 = "{hashlib.sha256(token.encode()).hexdigest()}"\n\n'
            for role, token in TOKENS.items()
        ),
        encoding="utf-8",
    )
    app = create_app(index, embedder=embedder, corpus_dir=corpus, tokens=load_tokens(tokens_file), backends={})
    with running(app) as url:
        yield {"url": url, "index": index, "corpus": corpus}


@pytest.fixture(scope="module")
def cli_answers(corpus_index) -> list[dict]:
    """What `rag ask --json` prints for QUESTIONS, from the real CLI in this process (one model load)."""
    result = CliRunner().invoke(
        cli, ["ask", *QUESTIONS, "--json", "--index", str(corpus_index)], env={"RAG_SERVER": None}
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


# ---- /ask -----------------------------------------------------------------------------------------------------------


def test_ask_returns_exactly_what_rag_ask_json_prints(server, cli_answers):
    assert [a["question"] for a in cli_answers] == QUESTIONS
    for expected in cli_answers:
        status, headers, raw = call(f"{server}/ask", "POST", {"question": expected["question"]})
        assert status == 200 and headers["content-type"] == "application/json"
        got = json.loads(raw)
        assert without_timings(got) == without_timings(expected)
        assert set(got["timings_ms"]) == set(expected["timings_ms"])
    assert cli_answers[-1]["abstained"] and not cli_answers[0]["abstained"]


def test_rag_ask_with_server_prints_the_servers_answer_and_exit_codes(server, cli_answers, corpus_index):
    result = CliRunner().invoke(cli, ["ask", *QUESTIONS, "--json", "--server", server])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [without_timings(r) for r in lines] == [without_timings(r) for r in cli_answers]
    assert "loaded index and model" not in result.stderr  # nothing loaded in this process

    text = CliRunner().invoke(cli, ["ask", QUESTIONS[0]], env={"RAG_SERVER": server})
    local = CliRunner().invoke(cli, ["ask", QUESTIONS[0], "--index", str(corpus_index)], env={"RAG_SERVER": None})
    assert text.exit_code == local.exit_code == 0, text.output
    assert text.stdout == local.stdout and QUESTIONS[0] in text.stdout

    refused = CliRunner().invoke(cli, ["ask", "x", "--server", server, "--llm", "ollama:llama3.2"])
    assert refused.exit_code == 2 and "BadArgument" in refused.stderr and "extractive" in refused.stderr


def test_concurrent_questions_share_one_engine_and_get_the_same_answers(server, cli_answers):
    from concurrent.futures import ThreadPoolExecutor

    questions = [a["question"] for a in cli_answers] * 2
    with ThreadPoolExecutor(len(questions)) as pool:
        got = list(pool.map(lambda q: call_json(f"{server}/ask", "POST", {"question": q}), questions))
    assert [status for status, _ in got] == [200] * len(questions)
    assert [without_timings(a) for _, a in got] == [without_timings(a) for a in cli_answers * 2]


def test_a_follow_up_is_rewritten_with_its_history_as_rag_ask_does(server, corpus_index, tmp_path):
    turns = [
        {"role": "user", "content": "How many vehicles did China export in 2023?"},
        {"role": "assistant", "content": "5.221 million vehicles (2023)."},
    ]
    history = tmp_path / "turns.json"
    history.write_text(json.dumps(turns), encoding="utf-8")
    local = CliRunner().invoke(
        cli,
        ["ask", "And in 2024?", "--json", "--history", str(history), "--index", str(corpus_index)],
        env={"RAG_SERVER": None},
    )
    assert local.exit_code == 0, local.output
    expected = json.loads(local.stdout)
    status, got = call_json(f"{server}/ask", "POST", {"question": "And in 2024?", "history": turns})
    assert status == 200 and got["standalone_question"] != "And in 2024?"
    assert without_timings(got) == without_timings(expected)
    result = CliRunner().invoke(cli, ["ask", "And in 2024?", "--json", "--history", str(history), "--server", server])
    assert result.exit_code == 0 and without_timings(json.loads(result.stdout)) == without_timings(expected)


def test_rag_ask_with_an_unreachable_server_fails_with_exit_code_5_and_loads_nothing(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(cli, ["ask", "How many?", "--server", address, "--index", str(tmp_path / "none")])
    assert result.exit_code == 5
    assert f"no paracite server answers at {address}" in result.stderr and "Traceback" not in result.output


def test_rag_ask_with_server_imports_no_model_index_or_engine(server):
    heavy = ["torch", "sentence_transformers", "faiss", "numpy", "rag.engine", "rag.index.reader", "fastapi"]
    script = (
        "import json, sys\nfrom app.cli import cli\n"
        "try:\n    cli(['ask', '--json', sys.argv[1]])\nexcept SystemExit as e:\n    code = e.code\n"
        f"print(json.dumps({{'code': code, 'loaded': [m for m in {heavy!r} if m in sys.modules]}}))\n"
    )
    env = {**os.environ, "RAG_SERVER": server, "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, QUESTIONS[0]], capture_output=True, text=True, env=env, timeout=60
    )
    wall = time.perf_counter() - t0
    answer, report = [json.loads(line) for line in done.stdout.splitlines()]
    assert report == {"code": 0, "loaded": []}, done.stderr
    assert answer["question"] == QUESTIONS[0] and not answer["abstained"]
    print(f"rag ask --server in a new process: {wall:.2f}s")


def sse_events(url: str, body: dict, headers: dict | None = None) -> list[tuple[str, dict]]:
    """(event, data) of each server-sent event of a POST /ask, read off a real connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    conn.request("POST", "/ask", json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type").startswith("text/event-stream")
    events = []
    for block in response.read().decode().split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            events.append((fields["event"], json.loads(fields["data"])))
    conn.close()
    return events


def test_ask_streams_server_sent_events_ending_with_the_answer(server, cli_answers):
    expected = cli_answers[0]
    for headers, body in [
        ({"Accept": "text/event-stream"}, {"question": QUESTIONS[0]}),
        ({}, {"question": QUESTIONS[0], "stream": True}),
    ]:
        events = sse_events(server, body, headers)
        kinds = [kind for kind, _ in events]
        assert kinds[-1] == "answer" and set(kinds[:-1]) == {"token"} and len(kinds) >= 2
        answer = events[-1][1]
        assert without_timings(answer) == without_timings(expected)
        assert "".join(data["text"] for kind, data in events[:-1]) == answer["answer"]


def test_a_stream_refused_before_it_starts_is_a_typed_json_error(server):
    status, headers, raw = call(
        f"{server}/ask", "POST", {"question": "x", "answerer": "gpt"}, headers={"Accept": "text/event-stream"}
    )
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(raw)["error"]["type"] == "BadArgument"


# ---- typed errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body, status, kind",
    [
        ("POST", "/ask", {"question": "   "}, 400, "BadArgument"),
        ("POST", "/ask", {"question": "x", "top_k": 0}, 422, "InvalidRequest"),
        ("POST", "/ask", {"question": "x", "top_k": MAX_TOP_K + 1}, 422, "InvalidRequest"),
        ("POST", "/ask", {"question": "x", "mode": "fuzzy"}, 422, "InvalidRequest"),
        ("POST", "/ask", {"question": "x", "topk": 3}, 422, "InvalidRequest"),
        ("POST", "/ask", {"question": "x", "history": [{"role": "system", "content": "y"}]}, 422, "InvalidRequest"),
        ("POST", "/ask", {}, 422, "InvalidRequest"),
        ("POST", "/ask", {"question": "x", "answerer": "openai:gpt-4o"}, 400, "BadArgument"),
        ("GET", "/documents/no-such-doc/paragraphs/1", None, 404, "UnknownParagraph"),
        ("GET", "/documents/caixin-commentary/paragraphs/9999", None, 404, "UnknownParagraph"),
        ("GET", "/documents/caixin-commentary/paragraphs/0", None, 404, "UnknownParagraph"),
        ("GET", "/documents/caixin-commentary/paragraphs/four", None, 422, "InvalidRequest"),
        ("GET", "/no/such/route", None, 404, "NotFound"),
        ("DELETE", "/ask", None, 405, "MethodNotAllowed"),
    ],
)
def test_bad_requests_get_typed_json_errors_never_a_traceback(server, method, path, body, status, kind):
    got_status, headers, raw = call(f"{server}{path}", method, body)
    assert (got_status, headers["content-type"]) == (status, "application/json")
    error = json.loads(raw)["error"]
    assert error["type"] == kind and error["message"] and "Traceback" not in raw.decode()


def test_malformed_json_is_an_invalid_request(server):
    status, body = call_json(
        f"{server}/ask", "POST", data=b'{"question": ', headers={"Content-Type": "application/json"}
    )
    assert status == 422 and body["error"]["type"] == "InvalidRequest"


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(server):
    parts = urlsplit(server)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    conn.putrequest("POST", "/ask")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()  # and no body: the answer comes first
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"]["type"] == "PayloadTooLarge"
    conn.close()


def test_without_a_tokens_file_a_request_naming_another_host_is_refused(server):
    status, body = call_json(f"{server}/documents", headers={"Host": "rebound.example"})
    assert status == 403 and body["error"]["type"] == "NotAllowed"
    assert call_json(f"{server}/documents", headers={"Host": "localhost"})[0] == 200


def test_no_index_yet_is_a_503_and_an_undeclared_body_is_counted_as_it_arrives(tmp_path, embedder):
    app = create_app(tmp_path / "index", embedder=embedder, corpus_dir=tmp_path, backends={}, max_body_bytes=1000)
    with running(app) as url:
        status, body = call_json(f"{url}/ask", "POST", {"question": "How many?"})
        assert status == 503 and body["error"]["type"] == "IndexNotFound"
        assert "rag ingest" in body["error"]["message"]
        assert call_json(f"{url}/health") == (200, {"status": "ok"})
        # Chunked, so no length is declared; small, so the server has read all of it when it answers.
        big = json.dumps({"question": "x" * 1500}).encode()
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request(
            "POST",
            "/ask",
            body=iter([big[:700], big[700:]]),
            headers={"Content-Type": "application/json"},
            encode_chunked=True,
        )
        response = conn.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"]["type"] == "PayloadTooLarge"
        conn.close()


# ---- documents and paragraphs -----------------------------------------------------------------------------------


def test_documents_lists_what_rag_docs_json_lists(server, corpus_index):
    listed = CliRunner().invoke(cli, ["docs", "--json", "--index", str(corpus_index)])
    assert listed.exit_code == 0
    expected = [json.loads(line) for line in listed.stdout.splitlines()]
    status, body = call_json(f"{server}/documents")
    assert status == 200 and len(body["documents"]) == len(expected) == 6
    for doc, cli_doc in zip(body["documents"], expected):
        assert doc["file"] == Path(cli_doc.pop("source_path")).name
        assert {k: v for k, v in doc.items() if k != "file"} == cli_doc
    assert body["generation"].startswith("gen-")


def test_a_paragraph_checks_a_citation_of_an_answer(server):
    _, answer = call_json(f"{server}/ask", "POST", {"question": QUESTIONS[1]})
    citation = answer["citations"][0]
    status, p = call_json(f"{server}/documents/{citation['doc_id']}/paragraphs/{citation['para']}")
    assert status == 200
    assert (p["label"], p["text"], p["page"], p["sha256"]) == (
        citation["label"],
        citation["text"],
        citation["page"],
        citation["sha256"],
    )
    assert citation["quote"] in p["text"]


def test_a_paragraph_is_what_rag_show_prints(server, corpus_index):
    status, p = call_json(f"{server}/documents/caixin-commentary/paragraphs/4")
    shown = CliRunner().invoke(cli, ["show", "caixin-commentary", "4", "--index", str(corpus_index)])
    assert status == 200 and shown.exit_code == 0
    assert shown.stdout.splitlines()[0] == f"{p['title']} — {p['label']}"
    assert shown.stdout.rstrip("\n").endswith(p["text"]) and f"Section: {p['heading']}" in shown.stdout


# ---- callers, roles and ingest ------------------------------------------------------------------------------------


def test_with_a_tokens_file_every_request_needs_a_known_token(guarded):
    url = guarded["url"]
    status, headers, raw = call(f"{url}/documents")
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert json.loads(raw)["error"]["type"] == "NotAuthenticated"
    status, body = call_json(f"{url}/documents", token="not-a-token")
    assert status == 401 and body["error"]["type"] == "NotAuthenticated"
    failed = [e for e in audit.read(audit.default_path(guarded["index"])) if e["action"] == audit.SIGN_IN]
    assert [(e["user"], e["outcome"]) for e in failed] == [("client 127.0.0.1", "refused")]  # a failed sign-in
    status, body = call_json(f"{url}/ask", "POST", {"question": QUESTIONS[0]}, token=TOKENS["reader"])
    assert status == 200 and not body["abstained"]
    assert call_json(f"{url}/health") == (200, {"status": "ok"})

    refused = CliRunner().invoke(cli, ["ask", QUESTIONS[0], "--server", url], env={"RAG_API_TOKEN": None})
    assert refused.exit_code == 1 and "NotAuthenticated" in refused.stderr and "RAG_API_TOKEN" in refused.stderr
    answered = CliRunner().invoke(
        cli, ["ask", QUESTIONS[0], "--json", "--server", url], env={"RAG_API_TOKEN": TOKENS["reader"]}
    )
    assert answered.exit_code == 0 and json.loads(answered.stdout)["question"] == QUESTIONS[0]


def test_ingest_is_for_editors(guarded):
    generation = call_json(f"{guarded['url']}/documents", token=TOKENS["reader"])[1]["generation"]
    status, body = call_json(f"{guarded['url']}/ingest", "POST", {"paths": ["zorblat-note.md"]}, token=TOKENS["reader"])
    assert status == 403 and body["error"]["type"] == "Forbidden" and "editor" in body["error"]["message"]
    assert call_json(f"{guarded['url']}/documents", token=TOKENS["reader"])[1]["generation"] == generation
    refused = [e for e in audit.read(audit.default_path(guarded["index"])) if e["outcome"] == "refused"]
    assert [(e["user"], e["role"], e["action"]) for e in refused if e["action"] != audit.SIGN_IN] == [
        ("reader-user", "reader", "ingest")
    ]


@pytest.mark.parametrize("path", ["../secret.md", "/etc/passwd", "link.md", "sub/../../secret.md"])
def test_ingest_reads_no_path_outside_the_corpus_folder(guarded, path):
    link = guarded["corpus"] / "link.md"
    link.symlink_to(guarded["corpus"].parent / "secret.md")
    try:
        status, body = call_json(f"{guarded['url']}/ingest", "POST", {"paths": [path]}, token=TOKENS["editor"])
    finally:
        link.unlink()
    assert status == 400 and body["error"]["type"] == "BadArgument" and "corpus folder" in body["error"]["message"]
    _, docs = call_json(f"{guarded['url']}/documents", token=TOKENS["editor"])
    assert "secret" not in {d["doc_id"] for d in docs["documents"]}


def test_ingest_while_another_holds_the_lock_is_a_409(guarded):
    with write_lock(guarded["index"]):
        status, body = call_json(
            f"{guarded['url']}/ingest", "POST", {"paths": ["zorblat-note.md"]}, token=TOKENS["editor"]
        )
    assert status == 409 and body["error"]["type"] == "IndexBusy"


def test_an_editors_ingest_is_answered_from_at_once(guarded):
    url, editor = guarded["url"], TOKENS["editor"]
    before = call_json(f"{url}/documents", token=editor)[1]
    status, report = call_json(f"{url}/ingest", "POST", {"paths": ["zorblat-note.md"]}, token=editor)
    assert status == 200, report
    assert report["added"] == ["zorblat-note"] and report["failed"] == [] and report["passages_embedded"] >= 1
    after = call_json(f"{url}/documents", token=editor)[1]
    assert after["generation"] == report["generation"] != before["generation"]
    assert {d["doc_id"] for d in after["documents"]} == {d["doc_id"] for d in before["documents"]} | {"zorblat-note"}
    _, answer = call_json(
        f"{url}/ask", "POST", {"question": "How many hovercraft did Zorblat Motors export?"}, token=TOKENS["reader"]
    )
    assert "12,345" in answer["answer"] and answer["citations"][0]["doc_id"] == "zorblat-note"
    assert audit.added_by(audit.default_path(guarded["index"]))["zorblat-note"]["user"] == "editor-user"
    # The whole corpus folder again: nothing changed, and the documents ingested from elsewhere stay.
    status, again = call_json(f"{url}/ingest", "POST", {}, token=editor)
    assert status == 200 and again["added"] == [] and again["removed"] == [] and again["generation"] is None


def test_an_ingest_by_another_process_is_answered_from_without_a_restart(guarded, embedder):
    from rag.index.ingest import ingest

    url, reader = guarded["url"], TOKENS["reader"]
    note = guarded["corpus"] / "zorblat-note.md"
    note.write_text(NOTE.replace("12,345", "67,890"), encoding="utf-8")
    report = ingest([note], guarded["index"], embedder)  # as `rag ingest` would, not through the server
    assert report.added + report.updated == ["zorblat-note"]  # added here when run alone
    assert call_json(f"{url}/documents", token=reader)[1]["generation"] == report.generation
    _, answer = call_json(
        f"{url}/ask", "POST", {"question": "How many hovercraft did Zorblat Motors export?"}, token=reader
    )
    assert "67,890" in answer["answer"] and "12,345" not in answer["answer"]


def test_the_openapi_schema_lists_the_routes_errors_and_bearer_auth(server):
    status, schema = call_json(f"{server}/openapi.json")
    assert status == 200
    assert {"/ask", "/documents", "/documents/{doc_id}/paragraphs/{para}", "/ingest", "/health"} <= set(schema["paths"])
    assert "ErrorBody" in schema["components"]["schemas"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    ask = schema["paths"]["/ask"]["post"]
    assert {"application/json", "text/event-stream"} <= set(ask["responses"]["200"]["content"])
    assert {"400", "422", "503"} <= set(ask["responses"])


# ---- our own logic: callers, token files, corpus paths, `rag serve` arguments --------------------------------------


def test_identify_without_a_tokens_file_serves_only_loopback_as_admin():
    assert identify(None, "127.0.0.1", None) == LOCAL
    assert identify(None, "::1", None).role is Role.ADMIN
    with pytest.raises(NotAllowed, match="only its own machine"):
        identify(None, "192.168.1.20", None)
    assert identify(None, "127.0.0.1", None, "localhost:8765") == identify(None, "127.0.0.1", None, "[::1]:80")
    with pytest.raises(NotAllowed):
        identify(None, "127.0.0.1", None, "rebound.example:8765")  # a page whose domain was pointed at 127.0.0.1
    tokens = {hashlib.sha256(b"t").hexdigest(): Principal("ann", None, Role.READER)}
    assert identify("t", "192.168.1.20", tokens) == Principal("ann", None, Role.READER)
    with pytest.raises(NotAuthenticated):
        identify(None, "127.0.0.1", tokens)  # with a tokens file, loopback needs a token too


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[[tokens]]\nuser = "a"\nrole = "root"\nsha256 = "' + "a" * 64 + '"\n', "role 'root'"),
        ('[[tokens]]\nuser = "a"\nrole = "reader"\nsha256 = "my-secret-token"\n', "not 64 hex digits"),
        ('[[tokens]]\nuser = "a"\nrole = "reader"\n', "exactly the keys"),
        (
            '[[tokens]]\nuser = "a"\nrole = "reader"\nsha256 = "' + "a" * 64 + '"\n'
            '[[tokens]]\nuser = "b"\nrole = "admin"\nsha256 = "' + "A" * 64 + '"\n',
            "repeats the digest",
        ),
        ("tokens = [", "not valid TOML"),
    ],
)
def test_a_bad_tokens_file_is_a_named_error(tmp_path, text, problem):
    path = tmp_path / "api-tokens.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ApiTokensConfigError, match=problem):
        load_tokens(path)


def test_tokens_file_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAG_API_TOKENS", raising=False)
    assert load_tokens() is None
    monkeypatch.setenv("RAG_API_TOKENS", str(tmp_path / "missing.toml"))
    with pytest.raises(ApiTokensConfigError, match="cannot be read"):
        load_tokens()


def test_corpus_paths_stay_under_the_corpus_folder(tmp_path):
    (tmp_path / "corpus" / "sub").mkdir(parents=True)
    root = (tmp_path / "corpus").absolute()
    assert corpus_paths(root, []) == [root]
    assert corpus_paths(root, ["sub/../a.md", "sub"]) == [root / "a.md", root / "sub"]
    for bad in ["..", "../corpus-other/a.md", str(tmp_path / "x.md")]:
        with pytest.raises(BadArgument):
            corpus_paths(root, [bad])


def test_rag_serve_refuses_another_address_without_a_tokens_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAG_API_TOKENS", raising=False)
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--index", str(tmp_path / "index")])
    assert result.exit_code == 2 and "no API tokens file" in result.stderr


def test_the_cli_repeats_the_stores_index_defaults():
    import app.cli
    import rag.index.layout

    assert (app.cli.DEFAULT_INDEX_DIR, app.cli.INDEX_ENV) == (
        rag.index.layout.DEFAULT_INDEX_DIR,
        rag.index.layout.INDEX_ENV,
    )
