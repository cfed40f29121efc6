"""What every page shares: the cached model and engine, the folders, and the sidebar settings.

The embedder and the engine live in `st.cache_resource`, so they load once per server process
and are shared by all sessions (both are thread-safe for reading). The engine is reloaded when
a newer ingest has swapped in (`Engine.is_stale`).

The answerer picker offers "extractive" and the operator's configured LLM backends (`app.backends`),
by name only: a visitor never types an address or a model name, so the server contacts only the
servers the operator listed, and a value put into session state by other means is replaced by
"extractive".

Who is asking (`principal`): with an `[auth]` section in `.streamlit/secrets.toml`, the signed-in
user (`st.user`, from the identity cookie Streamlit signs) with the role the operator's roles file
gives them (`app.auth`); None when nobody is signed in or the account has no role, and the router
then shows only the sign-in page. Without `[auth]`, the one local user, an admin (`app.auth.LOCAL`).
A secrets file that exists but cannot be read raises `SecretsUnreadable`, and the router lets nobody in.
Not handled: per-visitor limits on LLM use.
"""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app import audit
from app.auth import LOCAL, Principal, load_roles, principal_from_claims
from app.backends import Backend, allowed_backends, load_backends
from app.chat_models import make_answerer
from app.corpus import default_corpus_dir
from app.transcript import user_folder
from rag.answer import Answerer
from rag.embed.embedder import Embedder
from rag.engine import Engine
from rag.errors import BackendsConfigError, IndexNotFound, RagError
from rag.index.layout import default_index_dir
from rag.retrieve.hybrid import Mode

log = logging.getLogger(__name__)
EXTRACTIVE = "extractive"  # always offered; the other answerers are the operator's configured backends
MODES = [m.value for m in (Mode.HYBRID, Mode.BM25, Mode.DENSE)]
DEFAULTS = {"top_k": 5, "mode": Mode.HYBRID.value, "answerer": EXTRACTIVE}
SETTING_KEYS = tuple(DEFAULTS)
# Tests set this to share their already-loaded embedder with the app (same process).
EMBEDDER_FACTORY: Callable[[], Embedder] = Embedder


def eval_out_dir() -> Path:
    """Where `rag eval` writes its report (and the Evals page reads it)."""
    return Path(os.environ.get("RAG_EVAL_OUT") or "evals/out")


def eval_set_path() -> Path:
    from evals.gold import DEFAULT_SET

    return Path(os.environ.get("RAG_EVAL_SET") or DEFAULT_SET)


def conversations_root() -> Path:
    """Saved chats, beside the index folder by default ($RAG_CONVERSATIONS overrides)."""
    return Path(os.environ.get("RAG_CONVERSATIONS") or (index_dir().parent / "conversations"))


def conversations_dir(principal: Principal) -> Path:
    """This user's own conversations (the root itself for the single local user)."""
    return user_folder(conversations_root(), None if principal == LOCAL else principal.user)


def audit_path() -> Path:
    return audit.default_path(index_dir())


class SecretsUnreadable(RagError):
    """A secrets file exists but cannot be read, so nobody can tell whether sign-in is on: the app lets nobody in."""


def auth_enabled() -> bool:
    """True when `.streamlit/secrets.toml` (or `--secrets.files`) has an `[auth]` section: sign-in is on.

    False only when no secrets file exists, or one without `[auth]`. A secrets file that exists but cannot
    be read (bad TOML, not UTF-8, no permission) raises `SecretsUnreadable`: it may hold an `[auth]`
    section, so treating it as "no sign-in" would make every visitor the local admin (`rag serve` also
    refuses to start on a broken tokens file).
    """
    try:
        loaded = st.secrets.load_if_toml_exists()
    except Exception as e:  # e.g. a file that is not UTF-8, or one we may not read: Streamlit lets these through
        raise SecretsUnreadable(_secrets_problem() or f"a secrets file cannot be read ({type(e).__name__}: {e})") from e
    if not loaded:
        problem = _secrets_problem()  # Streamlit reports a file it cannot parse as no file at all
        if problem:
            raise SecretsUnreadable(problem)
        return False
    return "auth" in st.secrets


def _secrets_problem() -> str | None:
    """Why the configured secrets files could not be loaded; None when none of them exists."""
    from streamlit import config

    problem = None
    for path in map(Path, config.get_option("secrets.files") or []):
        if not os.path.lexists(path):
            continue
        if path.suffix != ".toml":
            if not path.is_dir() or any(path.iterdir()):  # an empty secrets folder holds no secrets
                problem = problem or f"{path} is not a .toml file or a folder of secrets that Streamlit can read"
            continue
        try:
            tomllib.loads(path.read_text("utf-8"))
        except OSError as e:
            return f"{path} cannot be read ({e.strerror or e})"
        except UnicodeDecodeError:
            return f"{path} is not UTF-8 text"
        except tomllib.TOMLDecodeError as e:
            return f"{path} is not valid TOML ({e})"
    return problem


def auth_providers() -> list[str | None]:
    """The providers named under [auth] ([auth.google], ...), or [None] for the unnamed one."""
    section = st.secrets.get("auth", {})
    named = [k for k, v in section.items() if hasattr(v, "keys") and k != "client_kwargs"]
    return named or [None]


def principal() -> Principal | None:
    """Who is asking: LOCAL without sign-in; the signed-in user with their role; None to show the sign-in page.

    The roles file is read on every run, so an edit applies at the user's next click. Raises
    `app.auth.RolesConfigError` when it is broken (the router says so and lets nobody in).
    """
    if not auth_enabled():
        return LOCAL
    if not st.user.get("is_logged_in"):
        return None
    return principal_from_claims(st.user.to_dict(), load_roles())


def signed_in() -> Principal:
    """The principal for a page: the router has already stopped any run without one."""
    who = principal()
    if who is None:
        st.stop()
    return who


def index_dir() -> Path:
    return default_index_dir()


def corpus_dir() -> Path:
    return default_corpus_dir()


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_embedder() -> Embedder:
    embedder = EMBEDDER_FACTORY()
    _ = embedder.model  # load now, so the first question pays only for itself
    return embedder


@st.cache_resource(show_spinner="Loading the index…")
def _load_engine(path: str) -> Engine:
    # Questions go through the index's ONNX encoder, so they never wait on the torch model's lock while an
    # upload is being embedded; uploads share the one torch model.
    return Engine.load(path, Embedder.for_index(path, get_embedder()))


def get_engine() -> Engine | None:
    """The live engine, or None after showing why there is none (no index yet, say)."""
    path = str(index_dir())
    try:
        engine = _load_engine(path)
        if engine.is_stale():
            _load_engine.clear()
            engine = _load_engine(path)
    except RagError as e:
        show_error(e)
        return None
    return engine


def show_error(error: RagError) -> None:
    """The one place a library error becomes a message on a page (its text already says how to fix it)."""
    from ui.render import md_escape

    if isinstance(error, IndexNotFound):
        st.info(
            f"No documents to answer from yet: {md_escape(error)}. Add some on the Library page.",
            icon=":material/info:",
        )
    else:
        st.error(md_escape(error), icon=":material/error:")


def configured_backends() -> dict[str, Backend]:
    """The operator's LLM backends; a broken file offers none (its details go to the server's log, not the page)."""
    try:
        return load_backends()
    except BackendsConfigError as e:
        log.warning("%s", e)
        st.sidebar.warning(
            "The LLM backends file has an error, so only the extractive answerer is offered; "
            "the server's log says where.",
            icon=":material/warning:",
        )
        return {}


@st.cache_resource(show_spinner="Loading the answerer (the local model takes about 30 s)…")
def _load_answerer(_engine: Engine, _backend: Backend, backend_id: str, generation: str) -> Answerer:
    # Keyed on the whole backend record (its repr holds no key), so an edited entry builds a new client.
    return make_answerer(_backend, _engine.embedder, _engine.titles)


def get_answerer(engine: Engine, settings: Settings) -> Answerer:
    """One answerer per (backend, index generation), shared by sessions; the local model loads once."""
    if settings.backend is None:
        return engine.answerer
    return _load_answerer(engine, settings.backend, repr(settings.backend), engine.index.generation)


def reload_engine() -> None:
    """Forget the cached engine; the next `get_engine` loads the live generation."""
    _load_engine.clear()


def keep_settings() -> None:
    """Keep sidebar values when a page that does not draw them runs (Streamlit drops unrendered widget state)."""
    for key in SETTING_KEYS:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


@dataclass(frozen=True)
class Settings:
    top_k: int
    mode: str
    answerer: str  # "extractive" or a configured backend's name
    backend: Backend | None = None  # that backend, from the operator's file; None for extractive


def sidebar_settings(principal: Principal) -> Settings:
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, default)  # defaults via state, so a kept value never clashes with them
    backends = allowed_backends(configured_backends(), principal)  # choosing an LLM is an admin's by default
    choices = [EXTRACTIVE, *backends]
    if st.session_state["answerer"] not in choices:
        # A name the operator removed, or anything else put into session state: never a spec or an address.
        st.session_state["answerer"] = EXTRACTIVE
    with st.sidebar:
        st.subheader("Settings")
        top_k = st.slider("Paragraphs to retrieve (top-k)", 1, 20, key="top_k")
        mode = st.selectbox(
            "Retrieval mode",
            MODES,
            key="mode",
            help="hybrid adds BM25 and dense scores, each z-normalised over its candidates "
            "(z-score fusion, measured better than reciprocal rank fusion)",
        )
        name = st.selectbox(
            "Answerer",
            choices,
            key="answerer",
            help="extractive quotes sentences (grounded by construction); the others are the LLM "
            "backends this server's operator configured, and every sentence they write has "
            "its citation verified",
        )
    return Settings(int(top_k), str(mode), str(name), backends.get(name))
