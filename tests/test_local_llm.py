"""Every test of the real local model (SmolLM2-135M, `local_model`: about 30 s to load), in one module, so that
the suite loads it once even on several xdist workers (which take a module at a time).

The local answerer end to end; the `openai:` backend over real HTTP: langchain-openai talks to an
OpenAI-compatible server on localhost that serves the real local model, and what comes back passes through
verification; and `rag serve` relaying an operator's backend over that server as server-sent events.
"""

from __future__ import annotations

import pytest

from app.backends import Backend
from app.chat_models import answerer_for, make_answerer
from app.serve import create_app
from rag.answer.llm import LlmAnswerer
from rag.documents import Support
from rag.query import Query
from tests.openai_server import serve
from tests.test_serve import running, sse_events


@pytest.fixture(scope="module")
def server(local_model):
    srv, seen = serve(local_model)
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", seen
    srv.shutdown()


def test_openai_backend_answers_over_http_and_is_verified(engine, server, monkeypatch):
    url, seen = server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("OPENAI_BASE_URL", url)  # the operator's address for that key (app.backends.key_env_for)
    answerer = make_answerer("openai:smollm2", engine.embedder, engine.titles, base_url=url, max_tokens=48)
    question = "How many vehicles did Hyundai and Kia build at overseas bases in 2023?"
    hits = engine.retriever.search(question, top_k=3)
    answer = answerer.answer(Query.plain(question), hits)
    request = seen[-1]
    assert request["body"]["model"] == "smollm2" and not request["body"].get("stream")
    assert request["authorization"] == "Bearer sk-test-secret-123"  # sent to the server, and only there
    assert "[briefing-japan-korea-precedent para." in request["body"]["messages"][-1]["content"]
    allowed = {(h.paragraph.doc_id, h.paragraph.para) for h in hits}
    assert answer.claims and all((c.doc_id, c.para) in allowed for c in answer.citations)
    assert all(cl.support.value in {"supported", "partial", "unsupported"} for cl in answer.claims)
    # the weak model's sentences are either verified, or the answer fell back to extractive and says so
    assert answer.answerer == "openai:smollm2" or "fallback from openai:smollm2" in answer.answerer
    assert "sk-test-secret-123" not in " ".join(answer.notes)


def test_openai_backend_streams_tokens_over_http(engine, server):
    url, seen = server
    answerer = make_answerer("openai:smollm2", engine.embedder, engine.titles, base_url=url, max_tokens=32)
    question = "What tariff did Turkey impose on Chinese cars?"
    stream = answerer.stream(Query.plain(question), engine.retriever.search(question, top_k=3))
    tokens = list(stream)
    assert seen[-1]["body"]["stream"] is True
    assert len(tokens) > 1 and "".join(tokens).strip()
    assert stream.result().claims


def test_the_key_never_goes_to_an_address_a_ui_visitor_typed(engine, server, monkeypatch):
    url, seen = server
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    answerer = answerer_for(engine, "openai:smollm2", url, send_key=False, max_tokens=4)
    question = "What tariff did Turkey impose on Chinese cars?"
    answerer.answer(Query.plain(question), engine.retriever.search(question, top_k=2))
    assert seen[-1]["authorization"] == "Bearer not-needed"


def test_local_model_end_to_end(engine, local_model):
    answerer = LlmAnswerer(local_model, engine.embedder, engine.titles, name="local")
    question = "How many vehicles did Hyundai and Kia build at overseas bases in 2023?"
    hits = engine.retriever.search(question, top_k=3)
    stream = answerer.stream(Query.plain(question), hits)
    streamed = "".join(stream)
    a = stream.answer
    assert streamed.strip() and a.claims
    allowed = {(h.paragraph.doc_id, h.paragraph.para) for h in hits}
    assert all((c.doc_id, c.para) in allowed for c in a.citations)  # verification ran: only context is cited
    assert a.answerer == "local" or a.answerer == "extractive (fallback from local)" or a.abstained
    assert all(c.support is not Support.UNCHECKED for c in a.claims)
    assert "verify" in a.timings_ms or a.abstained


def test_a_configured_llm_backend_streams_its_tokens_as_events(corpus_index, embedder, local_model):
    """An operator's backend named in the request: an OpenAI-compatible server over the real local model."""
    llm, seen = serve(local_model)
    backend = Backend("smol", "openai", "smollm2", f"http://127.0.0.1:{llm.server_address[1]}/v1")
    try:
        with running(create_app(corpus_index, embedder=embedder, backends={"smol": backend})) as url:
            events = sse_events(
                url,
                {
                    "question": "What tariff did Turkey impose on Chinese cars?",
                    "answerer": "smol",
                    "top_k": 3,
                    "stream": True,
                },
            )
    finally:
        llm.shutdown()
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert seen[-1]["body"]["stream"] is True and seen[-1]["body"]["model"] == "smollm2"
    assert len(tokens) > 1 and "".join(tokens).strip()  # relayed as the model produced them, not in one piece
    kind, answer = events[-1]
    assert kind == "answer" and "smol" in answer["answerer"] and answer["claims"]
