"""From a spec to an answerer: `ollama:MODEL`, `openai:MODEL`, `local`, or a backend the operator configured.

Backends (`make_chat_model`): `ollama:MODEL` (langchain-ollama), `openai:MODEL` (langchain-openai,
any OpenAI-compatible server via `base_url`) and `local` (SmolLM2 in-process, `rag.answer.local`),
or the name of a backend the operator configured (`app.backends`). `make_answerer(spec, ...)` builds
any answerer from a spec string or a `Backend`. A key goes only to an address configured for it
(`app.backends.key_env_for`), is passed explicitly (never read by a client from the environment)
and is never logged.

This is an office, not the pipeline: `rag.answer.llm.LlmAnswerer` takes any chat model.
"""

from __future__ import annotations

import httpx

from app.backends import (
    DEFAULT_PATH,
    LOCAL_ADDRESS,
    STANDARD_KEY_ENV,
    Backend,
    backend_for_spec,
    config_path,
    load_backends,
)
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm import LlmAnswerer
from rag.embed.embedder import Embedder
from rag.errors import BadArgument

# What `rag ask --llm` accepts besides a configured backend's name; any "ollama:NAME" or "openai:NAME" works too.
# The UI offers only extractive and the operator's configured backends (`app.backends`), by name.
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
    raise BadArgument(
        f"unknown answerer {spec!r}: use extractive, local, ollama:MODEL, openai:MODEL or the name "
        f"of a backend configured in {config_path() or DEFAULT_PATH} (e.g. {', '.join(ANSWERER_SPECS)})"
    )


def resolve_backend(
    spec: str | Backend, base_url: str | None = None, configured: dict[str, Backend] | None = None
) -> Backend:
    """The backend a spec means: a `Backend` as is, a configured backend's name, or an ad-hoc `kind:model`
    (with `base_url`), whose key follows `app.backends.key_env_for`."""
    if isinstance(spec, Backend):
        if base_url:
            raise BadArgument(f"backend {spec.name} has its own address ({spec.address}); do not pass another one")
        return spec
    text = spec.strip()
    if ":" not in text and text.lower() not in ("extractive", "local"):
        configured = load_backends() if configured is None else configured
        if text in configured:
            if base_url:
                raise BadArgument(
                    f"{text} is a configured backend with its own address ({configured[text].address}); "
                    f"drop --base-url, or use kind:MODEL --base-url ADDRESS"
                )
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


def make_chat_model(
    spec: str | Backend,
    base_url: str | None = None,
    timeout: float = 120.0,
    max_tokens: int = 400,
    send_key: bool = True,
):
    """A LangChain chat model for `spec` (see `resolve_backend`); nothing is contacted or loaded until the first call.

    A key is read from the backend's `key_env` only, and passed explicitly, so neither client reads
    one from the environment for itself; `send_key=False` sends none at all.
    """
    backend = resolve_backend(spec, base_url)
    key = backend.key() if send_key else None
    if backend.kind == "ollama":
        from langchain_ollama import ChatOllama

        # Redirects are not followed: a key or a prompt must not travel on to wherever a server points.
        return ChatOllama(
            model=backend.model,
            base_url=backend.address,
            temperature=0,
            num_predict=max_tokens,
            client_kwargs={"timeout": timeout, "auth": _ExactBearer(key), "follow_redirects": False},
        )
    if backend.kind == "openai":
        from langchain_openai import ChatOpenAI

        if send_key and backend.key_env and not key:
            raise BadArgument(
                f"the openai backend {backend.name} at {backend.address} needs its key in "
                f"${backend.key_env}: export it, or point --base-url at a local OpenAI-compatible server"
            )
        # A local server (vLLM, llama.cpp, LM Studio) ignores the key but the client insists on one.
        return ChatOpenAI(
            model=backend.model,
            base_url=backend.address,
            api_key=key or "not-needed",
            temperature=0,
            max_tokens=max_tokens,
            timeout=timeout,
            max_retries=1,
        )
    if backend.kind == "local":
        from rag.answer.local import LocalChatModel

        return LocalChatModel(max_new_tokens=min(max_tokens, 160))
    raise BadArgument(f"{backend.name!r} is not an LLM backend")


def make_answerer(
    spec: str | Backend, embedder: Embedder, titles: dict[str, str], base_url: str | None = None, **kwargs
):
    """An answerer for a spec of `ANSWERER_SPECS`, any ollama:/openai: model, or a configured backend (by name or record)."""
    if not isinstance(spec, Backend) and spec.strip().lower() == "extractive":
        return ExtractiveAnswerer(embedder, titles)
    backend = resolve_backend(spec, base_url)
    return LlmAnswerer(
        make_chat_model(backend, **kwargs),
        embedder,
        titles,
        name=backend.name,
        address=backend.address,
        secret_envs=(*STANDARD_KEY_ENV.values(), *([backend.key_env] if backend.key_env else [])),
    )


def answerer_for(engine, spec: str, base_url: str | None = None, **kwargs):
    """The engine's own extractive answerer for "extractive", else an answerer for `spec` (`make_answerer`)."""
    return (
        engine.answerer
        if spec == "extractive"
        else make_answerer(spec, engine.embedder, engine.titles, base_url, **kwargs)
    )
