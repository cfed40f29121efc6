"""A client of `rag serve`, on the standard library alone, so that `rag ask --server` starts in a fraction of a second.

It imports no model, index or web framework: a question costs one HTTP request to the warm server.
A server that does not answer is `ServerUnreachable`; one that answers with a typed error
(`{"error": {"type", "message"}}`) is `ServerError`, carrying that type.

Not handled: streaming (the server streams to clients that ask; this one waits for the whole answer),
or retries.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from rag.errors import BadArgument, ServerError, ServerUnreachable

SERVER_ENV = "RAG_SERVER"
TOKEN_ENV = "RAG_API_TOKEN"
# An extractive answer takes well under a second; a local LLM's can take a minute.
DEFAULT_TIMEOUT_S = 300.0


def ask(
    server: str,
    question: str,
    *,
    history: list[dict] | None = None,
    top_k: int = 5,
    mode: str = "hybrid",
    answerer: str = "extractive",
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """The answer's JSON (`rag.present.to_json`'s shape) from the server at `server`."""
    body = {"question": question, "history": history or [], "top_k": top_k, "mode": mode, "answerer": answerer}
    return request(server, "POST", "/ask", body, token=token, timeout=timeout)


def request(
    server: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Any:
    """One JSON request to the server; its JSON reply, or the error it names."""
    base = server.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise BadArgument(f"server address {server!r} must start with http:// or https://, e.g. http://127.0.0.1:8765")
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        data = json.dumps(body).encode("utf-8")
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as e:
        raise _typed(server, e) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException) as e:
        raise ServerUnreachable(server, str(getattr(e, "reason", None) or e)) from None
    except ValueError as e:  # an address urllib cannot read ("http://:80")
        raise BadArgument(f"server address {server!r}: {e}") from None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError as e:
        raise ServerUnreachable(
            server, f"what answers there is not a paracite server: its reply is not JSON ({e})"
        ) from None


def _typed(server: str, error: urllib.error.HTTPError) -> ServerError:
    try:
        detail = json.loads(error.read().decode("utf-8"))["error"]
        kind, message = str(detail["type"]), str(detail["message"])
    except (ValueError, KeyError, TypeError, OSError):
        return ServerError(server, error.code, "HTTPError", f"HTTP {error.code} {error.reason}")
    if kind == "NotAuthenticated":
        message += f"; put your token in ${TOKEN_ENV}"
    return ServerError(server, error.code, kind, message)
