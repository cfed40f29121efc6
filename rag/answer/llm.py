"""The generative answerer: any LangChain chat model, prompted to cite, then checked sentence by sentence.

Steps (`LlmAnswerer.answer`, and `stream` for token streaming):
1. Prompt the model with the numbered context paragraphs (`rag.prompts`).
2. Verify what comes back (`rag.verify`): invented markers are removed and counted, each sentence
   is judged supported / partial / unsupported against its cited paragraphs.
3. Fall back to the extractive answer when the backend cannot be reached or when no sentence is
   supported; `Answer.fallback` says which (typed), and a note says it in words. The refusal phrase
   gives an abstention.

Backends (`make_chat_model`): `ollama:MODEL` (langchain-ollama), `openai:MODEL` (langchain-openai,
any OpenAI-compatible server via `base_url`, key from OPENAI_API_KEY, never logged) and `local`
(SmolLM2 in-process, `rag.answer.local`). `make_answerer(spec, ...)` builds any answerer from a
spec string, `ANSWERER_SPECS` lists the choices a UI can offer.

Not handled: conversation memory inside the answer prompt (follow-ups are rewritten first, see
`rag.rewrite`), retries beyond the client's own.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace

from rag.answer import AnswerStream
from rag.citations import render_claims
from rag.answer.extractive import ExtractiveAnswerer
from rag.documents import Answer, Fallback, FallbackReason, Hit, SentenceClaim
from rag.embedding import Embedder
from rag.errors import BackendUnavailable, BadArgument
from rag.prompts import REFUSAL, answer_messages
from rag.verify import Verification, verify_answer

OLLAMA_DEFAULT_URL = "http://localhost:11434"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"

# What a UI can offer in a picker; any "ollama:NAME" or "openai:NAME" works too.
DEFAULT_MODELS = {"ollama": "llama3.2", "openai": "gpt-4o-mini"}
ANSWERER_SPECS = ["extractive", "local", *(f"{kind}:{model}" for kind, model in DEFAULT_MODELS.items())]


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
    raise BadArgument(f"unknown answerer {spec!r}: use extractive, local, ollama:MODEL or openai:MODEL "
                      f"(e.g. {', '.join(ANSWERER_SPECS)})")


def backend_address(spec: str, base_url: str | None = None) -> str:
    kind, _ = parse_spec(spec)
    if kind == "ollama":
        return base_url or os.environ.get("OLLAMA_HOST") or OLLAMA_DEFAULT_URL
    if kind == "openai":
        return base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL
    return "in-process"


def make_chat_model(spec: str, base_url: str | None = None, timeout: float = 120.0, max_tokens: int = 400,
                    send_key: bool = True):
    """A LangChain chat model for `spec`; nothing is contacted or loaded until the first call.

    OPENAI_API_KEY goes to the default (or $OPENAI_BASE_URL) address, and to `base_url` only with
    `send_key`: the CLI's operator chose that address, a UI visitor who types one did not own the key.
    """
    kind, model = parse_spec(spec)
    if kind == "ollama":
        from langchain_ollama import ChatOllama

        return ChatOllama(model=model, base_url=backend_address(spec, base_url), temperature=0,
                          num_predict=max_tokens, client_kwargs={"timeout": timeout})
    if kind == "openai":
        from langchain_openai import ChatOpenAI

        # A local server (vLLM, llama.cpp, LM Studio) ignores the key but the client insists on one.
        env_key = os.environ.get("OPENAI_API_KEY") if (send_key or not base_url) else None
        key = env_key or ("not-needed" if base_url else None)
        if key is None:
            raise BadArgument("openai: backends need OPENAI_API_KEY in the environment, "
                              "or --base-url for a local OpenAI-compatible server")
        return ChatOpenAI(model=model, base_url=backend_address(spec, base_url), api_key=key, temperature=0,
                          max_tokens=max_tokens, timeout=timeout, max_retries=1)
    if kind == "local":
        from rag.answer.local import LocalChatModel

        return LocalChatModel(max_new_tokens=min(max_tokens, 160))
    raise BadArgument(f"{spec!r} is not an LLM backend")


def make_answerer(spec: str, embedder: Embedder, titles: dict[str, str], base_url: str | None = None, **kwargs):
    """An answerer for a spec from `ANSWERER_SPECS` (or any ollama:/openai: model)."""
    kind, _ = parse_spec(spec)
    if kind == "extractive":
        return ExtractiveAnswerer(embedder, titles)
    return LlmAnswerer(make_chat_model(spec, base_url, **kwargs), embedder, titles, name=spec,
                       address=backend_address(spec, base_url))


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
                 address: str = "", fallback=None):
        self.chat_model = chat_model
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
                           self.fallback.with_embedder(embedder))

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
                stream.answer = replace(answer, notes=(*answer.notes, _scrub(cut)))
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
        reason = type(error).__name__ if _is_connection_error(error) else f"{type(error).__name__}: {error}"
        err = BackendUnavailable(self.name, self.address, _scrub(reason)[:200])
        return self._fallback(question, hits, (str(err), "fell back to the extractive answer"), {}, {},
                              Fallback(FallbackReason.UNREACHABLE, self.name, str(err)))

    def _fallback(self, question, hits, notes, timings, signals, fallback: Fallback) -> Answer:
        base = self.fallback.answer(question, hits)
        return replace(base, answerer=f"{base.answerer} (fallback from {self.name})", fallback=fallback,
                       notes=base.notes + tuple(notes), timings_ms={**base.timings_ms, **timings},
                       signals={**base.signals, **{f"llm_{k}": v for k, v in signals.items()}})


def _scrub(text: str) -> str:
    """Error texts from a server may echo the key; it never reaches notes or logs."""
    key = os.environ.get("OPENAI_API_KEY")
    return text.replace(key, "***") if key else text


def _notes(v: Verification) -> tuple[str, ...]:
    notes = []
    if v.invented:
        notes.append(f"removed {len(v.invented)} citation(s) to paragraphs not in the context: {', '.join(v.invented)}")
    flagged = sum(1 for c in v.claims if not c.citations)
    if flagged:
        notes.append(f"{flagged} sentence(s) without a valid citation, marked unsupported")
    return tuple(notes)
