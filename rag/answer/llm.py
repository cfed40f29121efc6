"""The generative answerer: any LangChain chat model, prompted to cite, then checked sentence by sentence.

Steps (`LlmAnswerer.answer`, and `stream` for token streaming):
1. Prompt the model with the numbered context paragraphs (`rag.prompts`).
2. Verify what comes back (`rag.verify`): invented markers are removed and counted, each sentence
   is judged supported / partial / unsupported against its cited paragraphs.
3. Fall back to the extractive answer when the backend cannot be reached or when no sentence is
   supported; `Answer.fallback` says which (typed), and a note says it in words. The refusal phrase
   gives an abstention.

Backends (`make_chat_model`): `ollama:MODEL` (langchain-ollama), `openai:MODEL` (langchain-openai,
any OpenAI-compatible server via `base_url`) and `local` (SmolLM2 in-process, `rag.answer.local`),
or the name of a backend the operator configured (`rag.backends`). `make_answerer(spec, ...)` builds
any answerer from a spec string or a `Backend`. A key goes only to an address configured for it
(`rag.backends.key_env_for`), is passed explicitly (never read by a client from the environment)
and is never logged; a server's error body goes to the log, not into the answer's notes.

Not handled: conversation memory inside the answer prompt (follow-ups are rewritten first, see
`rag.rewrite`), retries beyond the client's own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

import httpx

from rag.answer import AnswerStream
from rag.citations import render_claims
from rag.answer.extractive import ExtractiveAnswerer
from rag.documents import Answer, Fallback, FallbackReason, Hit, SentenceClaim
from rag.backends import (DEFAULT_PATH, LOCAL_ADDRESS, OLLAMA_DEFAULT_URL, OPENAI_DEFAULT_URL,  # noqa: F401
                          STANDARD_KEY_ENV, Backend, backend_for_spec, config_path, load_backends)
from rag.embedding import Embedder
from rag.errors import BackendUnavailable, BadArgument
from rag.prompts import REFUSAL, answer_messages
from rag.verify import Verification, verify_answer

# What `rag ask --llm` accepts besides a configured backend's name; any "ollama:NAME" or "openai:NAME" works too.
# The UI offers only extractive and the operator's configured backends (`rag.backends`), by name.
DEFAULT_MODELS = {"ollama": "llama3.2", "openai": "gpt-4o-mini"}
ANSWERER_SPECS = ["extractive", "local", *(f"{kind}:{model}" for kind, model in DEFAULT_MODELS.items())]

log = logging.getLogger(__name__)


def parse_spec(spec: str) -> tuple[str, str]:
    """
    >>> parse_spec("ollama:llama3.2"), parse_spec("local")
    (('ollama', 'llama3.2'), ('local', ''))
    """
    kind, _, model = spec.strip().partition(":")
    kind = kind.lower()
    if kind in ("extractive", "local") and not model:
        return kind, ""
    if kind in ("ollama", "openai") and model:
        return kind, model
    raise BadArgument(f"unknown answerer {spec!r}: use extractive, local, ollama:MODEL, openai:MODEL or the name "
                      f"of a backend configured in {config_path() or DEFAULT_PATH} (e.g. {', '.join(ANSWERER_SPECS)})")


def resolve_backend(spec: str | Backend, base_url: str | None = None,
                    configured: dict[str, Backend] | None = None) -> Backend:
    """The backend a spec means: a `Backend` as is, a configured backend's name, or an ad-hoc `kind:model`
    (with `base_url`), whose key follows `rag.backends.key_env_for`."""
    if isinstance(spec, Backend):
        if base_url:
            raise BadArgument(f"backend {spec.name} has its own address ({spec.address}); do not pass another one")
        return spec
    text = spec.strip()
    if ":" not in text and text.lower() not in ("extractive", "local"):
        configured = load_backends() if configured is None else configured
        if text in configured:
            if base_url:
                raise BadArgument(f"{text} is a configured backend with its own address ({configured[text].address}); "
                                  f"drop --base-url, or use kind:MODEL --base-url ADDRESS")
            return configured[text]
        parse_spec(text)  # raises, naming the choices
    kind, model = parse_spec(text)
    if kind == "extractive":
        raise BadArgument("extractive is not an LLM backend; it needs no chat model")
    if kind in ("ollama", "openai") and configured is None:
        configured = load_backends()  # a configured key may be meant for this very address
    return backend_for_spec(kind, model, base_url, configured)


def backend_address(spec: str | Backend, base_url: str | None = None) -> str:
    """Where a spec's requests go: its server's address, or "in-process"."""
    if not isinstance(spec, Backend) and spec.strip().lower() == "extractive":
        return LOCAL_ADDRESS
    return resolve_backend(spec, base_url).address


class _ExactBearer(httpx.Auth):
    """Sets the Authorization header to exactly the key we chose, or removes it.

    ollama-python adds `Bearer $OLLAMA_API_KEY` to every request of every client, whatever its host;
    this runs last, on each request, so no key reaches an address the operator did not configure for it.
    """

    def __init__(self, key: str | None):
        self._key = key

    def auth_flow(self, request):
        request.headers.pop("Authorization", None)
        if self._key:
            request.headers["Authorization"] = f"Bearer {self._key}"
        yield request

    def __repr__(self) -> str:  # models are printed in logs and errors; the key never is
        return f"_ExactBearer({'***' if self._key else None})"


def make_chat_model(spec: str | Backend, base_url: str | None = None, timeout: float = 120.0, max_tokens: int = 400,
                    send_key: bool = True):
    """A LangChain chat model for `spec` (see `resolve_backend`); nothing is contacted or loaded until the first call.

    A key is read from the backend's `key_env` only, and passed explicitly, so neither client reads
    one from the environment for itself; `send_key=False` sends none at all.
    """
    backend = resolve_backend(spec, base_url)
    key = backend.key() if send_key else None
    if backend.kind == "ollama":
        from langchain_ollama import ChatOllama

        # Redirects are not followed: a key or a prompt must not travel on to wherever a server points.
        return ChatOllama(model=backend.model, base_url=backend.address, temperature=0, num_predict=max_tokens,
                          client_kwargs={"timeout": timeout, "auth": _ExactBearer(key), "follow_redirects": False})
    if backend.kind == "openai":
        from langchain_openai import ChatOpenAI

        if send_key and backend.key_env and not key:
            raise BadArgument(f"the openai backend {backend.name} at {backend.address} needs its key in "
                              f"${backend.key_env}: export it, or point --base-url at a local OpenAI-compatible server")
        # A local server (vLLM, llama.cpp, LM Studio) ignores the key but the client insists on one.
        return ChatOpenAI(model=backend.model, base_url=backend.address, api_key=key or "not-needed", temperature=0,
                          max_tokens=max_tokens, timeout=timeout, max_retries=1)
    if backend.kind == "local":
        from rag.answer.local import LocalChatModel

        return LocalChatModel(max_new_tokens=min(max_tokens, 160))
    raise BadArgument(f"{backend.name!r} is not an LLM backend")


def make_answerer(spec: str | Backend, embedder: Embedder, titles: dict[str, str], base_url: str | None = None,
                  **kwargs):
    """An answerer for a spec of `ANSWERER_SPECS`, any ollama:/openai: model, or a configured backend (by name or record)."""
    if not isinstance(spec, Backend) and spec.strip().lower() == "extractive":
        return ExtractiveAnswerer(embedder, titles)
    backend = resolve_backend(spec, base_url)
    return LlmAnswerer(make_chat_model(backend, **kwargs), embedder, titles, name=backend.name,
                       address=backend.address, key_env=backend.key_env)


def _is_connection_error(error: BaseException) -> bool:
    names = {"ConnectError", "ConnectTimeout", "APIConnectionError", "APITimeoutError", "ConnectionError"}
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError) or type(error).__name__ in names:
            return True
        error = error.__cause__ or error.__context__
    return False


class LlmAnswerer:
    def __init__(self, chat_model, embedder: Embedder, titles: dict[str, str], name: str | None = None,
                 address: str = "", fallback=None, key_env: str | None = None):
        self.chat_model = chat_model
        self.key_env = key_env  # whose value is scrubbed from every note, besides the standard key variables
        self.embedder = embedder
        self.titles = titles
        self.name = name or getattr(chat_model, "model", None) or type(chat_model).__name__
        self.address = address or "in-process"
        self.fallback = fallback or ExtractiveAnswerer(embedder, titles)

    def answer(self, question: str, hits: list[Hit]) -> Answer:
        if not hits:
            return self._refusal(question, hits, {})
        t0 = time.perf_counter()
        try:
            message = self.chat_model.invoke(answer_messages(question, hits))
        except Exception as e:
            return self._unreachable(question, hits, e)
        generate_ms = (time.perf_counter() - t0) * 1000
        usage = getattr(message, "usage_metadata", None) or {}
        return self.finish(question, hits, str(message.content), generate_ms, usage.get("output_tokens"))

    def warm(self) -> float:
        """Load an in-process model now (a server's model loads on its side); seconds taken."""
        load = getattr(self.chat_model, "load", None)
        return float(load()) if callable(load) else 0.0

    def with_embedder(self, embedder: Embedder) -> "LlmAnswerer":
        return LlmAnswerer(self.chat_model, embedder, self.titles, self.name, self.address,
                           self.fallback.with_embedder(embedder), self.key_env)

    def stream(self, question: str, hits: list[Hit]) -> AnswerStream:
        stream = AnswerStream()

        def tokens() -> Iterator[str]:
            if not hits:
                stream.answer = self._refusal(question, hits, {})
                yield REFUSAL
                return
            t0 = time.perf_counter()
            pieces: list[str] = []
            try:
                for chunk in self.chat_model.stream(answer_messages(question, hits)):
                    piece = str(chunk.content)
                    if piece:
                        pieces.append(piece)
                        yield piece
            except Exception as e:
                if not pieces:
                    stream.answer = self._unreachable(question, hits, e)
                    yield render_claims(stream.answer.claims)
                    return
                # Cut off mid-answer: verify what arrived, and say that it is partial.
                answer = self.finish(question, hits, "".join(pieces), (time.perf_counter() - t0) * 1000, None)
                cut = f"the answer was cut off by an error from {self.address} ({type(e).__name__}); what arrived was verified"
                stream.answer = replace(answer, notes=(*answer.notes, _scrub(cut, self.key_env)))
                return
            stream.answer = self.finish(question, hits, "".join(pieces), (time.perf_counter() - t0) * 1000, None)

        stream._tokens = tokens()
        return stream

    def finish(self, question: str, hits: Sequence[Hit], text: str, generate_ms: float = 0.0,
               output_tokens: int | None = None) -> Answer:
        """Verify generated `text` and turn it into an Answer (or a fallback); public so evals can replay text."""
        t0 = time.perf_counter()
        v = verify_answer(text, hits, self.embedder, self.titles)
        timings = {"generate": generate_ms, "verify": (time.perf_counter() - t0) * 1000}
        signals = {"supported": float(v.counts.supported), "partial": float(v.counts.partial),
                   "unsupported": float(v.counts.unsupported), "sentences": float(v.counts.sentences),
                   "invented": float(len(v.invented))}
        if output_tokens:
            signals["output_tokens"] = float(output_tokens)
        notes = _notes(v)
        if v.refused and not v.any_supported:
            return replace(self._refusal(question, hits, signals), timings_ms=timings, notes=notes)
        if not v.any_supported:
            short = " ".join(text.split())[:300]
            reason = ("no sentence of the LLM answer was supported by the paragraphs it cited "
                      f"({v.counts.summary()}); showing the extractive answer instead. LLM answer was: {short}")
            return self._fallback(question, hits, notes + (reason,), timings, signals,
                                  Fallback(FallbackReason.UNSUPPORTED, self.name, v.counts.summary()))
        return Answer(question=question, claims=v.claims, abstained=False, retrieved=tuple(hits),
                      answerer=self.name, notes=(v.counts.summary(), *notes), timings_ms=timings, signals=signals)

    def _refusal(self, question: str, hits: Sequence[Hit], signals: dict) -> Answer:
        return Answer(question=question, claims=(SentenceClaim(REFUSAL),), abstained=True, retrieved=tuple(hits),
                      answerer=self.name, signals=signals)

    def _unreachable(self, question: str, hits: list[Hit], error: Exception) -> Answer:
        remote = self.address != "in-process"
        if not (_is_connection_error(error) or remote):
            raise error  # a bug or a broken local model, not an unreachable server
        # The server's own words (an error body) may quote the prompt, echo a key or describe its insides;
        # visitors see only the kind of error and its HTTP status, and the operator's log gets the rest.
        reason = type(error).__name__
        status = _status_code(error)
        if status is not None:
            reason = f"HTTP {status}, {reason}"
        log.warning("LLM backend %s at %s failed: %s", self.name, self.address,
                    _scrub(f"{type(error).__name__}: {error}", self.key_env)[:2000])
        err = BackendUnavailable(self.name, self.address, reason)
        return self._fallback(question, hits, (str(err), "fell back to the extractive answer"), {}, {},
                              Fallback(FallbackReason.UNREACHABLE, self.name, str(err)))

    def _fallback(self, question, hits, notes, timings, signals, fallback: Fallback) -> Answer:
        base = self.fallback.answer(question, hits)
        return replace(base, answerer=f"{base.answerer} (fallback from {self.name})", fallback=fallback,
                       notes=base.notes + tuple(notes), timings_ms={**base.timings_ms, **timings},
                       signals={**base.signals, **{f"llm_{k}": v for k, v in signals.items()}})


def _status_code(error: BaseException) -> int | None:
    """The HTTP status of an openai, ollama or httpx error, when it has one."""
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _scrub(text: str, key_env: str | None = None) -> str:
    """Error texts from a server may echo a key; none reaches notes or logs."""
    for name in {*STANDARD_KEY_ENV.values(), *([key_env] if key_env else [])}:
        key = os.environ.get(name)
        if key and len(key) >= 4:
            text = text.replace(key, "***")
    return text


def _notes(v: Verification) -> tuple[str, ...]:
    notes = []
    if v.invented:
        notes.append(f"removed {len(v.invented)} citation(s) to paragraphs not in the context: {', '.join(v.invented)}")
    flagged = sum(1 for c in v.claims if not c.citations)
    if flagged:
        notes.append(f"{flagged} sentence(s) without a valid citation, marked unsupported")
    return tuple(notes)
