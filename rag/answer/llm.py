"""The generative answerer: any LangChain chat model, prompted to cite, then checked sentence by sentence.

Steps (`LlmAnswerer.answer`, and `stream` for token streaming):
1. Prompt the model with the numbered context paragraphs (`rag.prompts`).
2. Verify what comes back (`rag.cite.verify`): invented markers are removed and counted, each sentence
   is judged supported / partial / unsupported against its cited paragraphs.
3. Fall back to the extractive answer when the backend cannot be reached or when no sentence is
   supported; `Answer.fallback` says which (typed), and a note says it in words. The refusal phrase
   gives an abstention.

The chat model comes from the caller: `app.chat_models` builds one from a spec (`ollama:MODEL`,
`openai:MODEL`, `local`, or an operator-configured backend). A key's value is scrubbed from every
note (the environment variables named in `secret_envs`); a server's error body goes to the log,
not into the answer's notes.

Not handled: conversation memory inside the answer prompt (follow-ups are rewritten first, see
`rag.query`), retries beyond the client's own.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Sequence
from dataclasses import replace

from rag.answer import AnswerStream
from rag.answer.extractive import ExtractiveAnswerer
from rag.cite.markers import render_claims
from rag.cite.verify import Verification, verify_answer
from rag.documents import Answer, Fallback, FallbackReason, Hit, SentenceClaim
from rag.embed.embedder import Embedder
from rag.errors import BackendUnavailable
from rag.prompts import REFUSAL, answer_messages
from rag.query import Query

log = logging.getLogger(__name__)


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
    def __init__(
        self,
        chat_model,
        embedder: Embedder,
        titles: dict[str, str],
        name: str | None = None,
        address: str = "",
        fallback=None,
        secret_envs: tuple[str, ...] = (),
    ):
        self.chat_model = chat_model
        self.secret_envs = secret_envs  # environment variables whose values are scrubbed from every note
        self.embedder = embedder
        self.titles = titles
        self.name = name or getattr(chat_model, "model", None) or type(chat_model).__name__
        self.address = address or "in-process"
        self.fallback = fallback or ExtractiveAnswerer(embedder, titles)

    def answer(self, query: Query, hits: list[Hit]) -> Answer:
        if not hits:
            return self._refusal(query, hits, {})
        t0 = time.perf_counter()
        try:
            message = self.chat_model.invoke(answer_messages(query.standalone, hits))
        except Exception as e:
            return self._unreachable(query, hits, e)
        generate_ms = (time.perf_counter() - t0) * 1000
        usage = getattr(message, "usage_metadata", None) or {}
        return self.finish(query, hits, str(message.content), generate_ms, usage.get("output_tokens"))

    def warm(self) -> float:
        """Load an in-process model now (a server's model loads on its side); seconds taken."""
        load = getattr(self.chat_model, "load", None)
        return float(load()) if callable(load) else 0.0

    def with_embedder(self, embedder: Embedder) -> LlmAnswerer:
        return LlmAnswerer(
            self.chat_model,
            embedder,
            self.titles,
            self.name,
            self.address,
            self.fallback.with_embedder(embedder),
            self.secret_envs,
        )

    def stream(self, query: Query, hits: list[Hit]) -> AnswerStream:
        def tokens() -> Generator[str, None, Answer]:
            if not hits:
                yield REFUSAL
                return self._refusal(query, hits, {})
            t0 = time.perf_counter()
            pieces: list[str] = []
            try:
                for chunk in self.chat_model.stream(answer_messages(query.standalone, hits)):
                    piece = str(chunk.content)
                    if piece:
                        pieces.append(piece)
                        yield piece
            except Exception as e:
                if not pieces:
                    answer = self._unreachable(query, hits, e)
                    yield render_claims(answer.claims)
                    return answer
                # Cut off mid-answer: verify what arrived, and say that it is partial.
                answer = self.finish(query, hits, "".join(pieces), (time.perf_counter() - t0) * 1000, None)
                cut = f"the answer was cut off by an error from {self.address} ({type(e).__name__}); what arrived was verified"
                return replace(answer, notes=(*answer.notes, _scrub(cut, self.secret_envs)))
            return self.finish(query, hits, "".join(pieces), (time.perf_counter() - t0) * 1000, None)

        return AnswerStream(tokens())

    def finish(
        self, query: Query, hits: Sequence[Hit], text: str, generate_ms: float = 0.0, output_tokens: int | None = None
    ) -> Answer:
        """Verify generated `text` and turn it into an Answer (or a fallback); public so evals can replay text."""
        t0 = time.perf_counter()
        v = verify_answer(text, hits, self.embedder, self.titles)
        timings = {"generate": generate_ms, "verify": (time.perf_counter() - t0) * 1000}
        signals = {
            "supported": float(v.counts.supported),
            "partial": float(v.counts.partial),
            "unsupported": float(v.counts.unsupported),
            "sentences": float(v.counts.sentences),
            "invented": float(len(v.invented)),
        }
        if output_tokens:
            signals["output_tokens"] = float(output_tokens)
        notes = _notes(v)
        if v.refused and not v.any_supported:
            return replace(self._refusal(query, hits, signals), timings_ms=timings, notes=notes)
        if not v.any_supported:
            short = " ".join(text.split())[:300]
            reason = (
                "no sentence of the LLM answer was supported by the paragraphs it cited "
                f"({v.counts.summary()}); showing the extractive answer instead. LLM answer was: {short}"
            )
            return self._fallback(
                query,
                hits,
                notes + (reason,),
                timings,
                signals,
                Fallback(FallbackReason.UNSUPPORTED, self.name, v.counts.summary()),
            )
        return Answer(
            question=query.standalone,
            claims=v.claims,
            abstained=False,
            retrieved=tuple(hits),
            answerer=self.name,
            notes=(v.counts.summary(), *notes),
            timings_ms=timings,
            signals=signals,
        )

    def _refusal(self, query: Query, hits: Sequence[Hit], signals: dict) -> Answer:
        return Answer(
            question=query.standalone,
            claims=(SentenceClaim(REFUSAL),),
            abstained=True,
            retrieved=tuple(hits),
            answerer=self.name,
            signals=signals,
        )

    def _unreachable(self, query: Query, hits: list[Hit], error: Exception) -> Answer:
        remote = self.address != "in-process"
        if not (_is_connection_error(error) or remote):
            raise error  # a bug or a broken local model, not an unreachable server
        # The server's own words (an error body) may quote the prompt, echo a key or describe its insides;
        # visitors see only the kind of error and its HTTP status, and the operator's log gets the rest.
        reason = type(error).__name__
        status = _status_code(error)
        if status is not None:
            reason = f"HTTP {status}, {reason}"
        log.warning(
            "LLM backend %s at %s failed: %s",
            self.name,
            self.address,
            _scrub(f"{type(error).__name__}: {error}", self.secret_envs)[:2000],
        )
        err = BackendUnavailable(self.name, self.address, reason)
        return self._fallback(
            query,
            hits,
            (str(err), "fell back to the extractive answer"),
            {},
            {},
            Fallback(FallbackReason.UNREACHABLE, self.name, str(err)),
        )

    def _fallback(self, query: Query, hits, notes, timings, signals, fallback: Fallback) -> Answer:
        base = self.fallback.answer(query, hits)
        return replace(
            base,
            answerer=f"{base.answerer} (fallback from {self.name})",
            fallback=fallback,
            notes=base.notes + tuple(notes),
            timings_ms={**base.timings_ms, **timings},
            signals={**base.signals, **{f"llm_{k}": v for k, v in signals.items()}},
        )


def _status_code(error: BaseException) -> int | None:
    """The HTTP status of an openai, ollama or httpx error, when it has one."""
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _scrub(text: str, secret_envs: tuple[str, ...] = ()) -> str:
    """Error texts from a server may echo a key; none reaches notes or logs."""
    for name in set(secret_envs):
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
