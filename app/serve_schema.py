"""The shapes of `rag serve`'s requests and responses: the pydantic models the OpenAPI schema is drawn from,
the typed error body, JSON as `rag ask --json` prints it, and server-sent events.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, Literal

from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.limits import HISTORY_MAX_CHARS, HISTORY_MAX_TURNS, HISTORY_TURN_MAX_CHARS, QUESTION_MAX_CHARS, history_problem

# The question's and the history's caps are app.limits', which the UI applies too.
MAX_QUESTION_CHARS = QUESTION_MAX_CHARS
MAX_TOP_K = 50
MAX_INGEST_PATHS = 1000


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: str = Field(
        description=f"At most {QUESTION_MAX_CHARS:,} characters for a user turn (an earlier "
        f"question), {HISTORY_TURN_MAX_CHARS:,} for an assistant turn."
    )


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=MAX_QUESTION_CHARS, examples=["How many vehicles did China export in 2023?"])
    history: list[Turn] = Field(
        default_factory=list,
        description="Earlier turns: the question is rewritten as a standalone one. At most "
        f"{HISTORY_MAX_TURNS} turns and {HISTORY_MAX_CHARS:,} characters in all.",
    )
    top_k: int = Field(5, ge=1, le=MAX_TOP_K, description="Paragraphs to retrieve.")
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"
    answerer: str = Field(
        "extractive",
        max_length=100,
        description="extractive, or the name of a backend in the operator's backends file.",
    )
    stream: bool = Field(False, description="Server-sent events, as with 'Accept: text/event-stream'.")

    @model_validator(mode="after")
    def _history_fits(self) -> AskRequest:
        """An earlier user turn can become the standalone question: the history has caps, as the question has."""
        problem = history_problem([turn.model_dump() for turn in self.history])
        if problem:
            raise ValueError(problem)
        return self


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    paths: list[str] = Field(
        default_factory=list,
        max_length=MAX_INGEST_PATHS,
        description="Files or folders relative to the corpus folder; none means all of it.",
    )


class ErrorDetail(BaseModel):
    type: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
    for status in (400, 401, 403, 404, 409, 413, 422, 429, 503)
}


class JSON(Response):
    """JSON as `rag ask --json` prints it (`json.dumps`, UTF-8 left as is), so the bytes match the CLI's line."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False).encode("utf-8")


def error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message}}


def sse(event: str, data: Any) -> str:
    """One server-sent event; JSON data never holds a raw newline, so it is always one `data:` line.

    >>> sse("token", {"text": "a\\nb"})
    'event: token\\ndata: {"text": "a\\\\nb"}\\n\\n'
    """
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def wants_events(accept: str | None) -> bool:
    """
    >>> wants_events("text/event-stream"), wants_events("application/json, */*"), wants_events(None)
    (True, False, False)
    """
    return "text/event-stream" in (accept or "").lower()
