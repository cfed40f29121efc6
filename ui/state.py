"""What every page shares: the cached model and engine, the folders, and the sidebar settings.

The embedder and the engine live in `st.cache_resource`, so they load once per server process
and are shared by all sessions (both are thread-safe for reading). The engine is reloaded when
a newer ingest has swapped in (`Engine.is_stale`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from rag.answer import Answerer
from rag.answer.llm import DEFAULT_MODELS, backend_address
from rag.corpus import default_corpus_dir
from rag.embedding import Embedder
from rag.engine import Engine
from rag.errors import IndexNotFound, RagError
from rag.retrieval import Mode
from rag.store import default_index_dir

# The answerer kinds the sidebar offers; ollama and openai also take a model name and a server address.
ANSWERER_KINDS = ["extractive", "local", "ollama", "openai"]
MODES = [m.value for m in (Mode.HYBRID, Mode.BM25, Mode.DENSE)]
DEFAULTS = {"top_k": 5, "mode": Mode.HYBRID.value, "answerer": "extractive", "llm_model": "", "llm_url": ""}
SETTING_KEYS = tuple(DEFAULTS)
# Tests set this to share their already-loaded embedder with the app (same process).
EMBEDDER_FACTORY: Callable[[], Embedder] = Embedder


def eval_out_dir() -> Path:
    """Where `rag eval` writes its report (and the Evals page reads it)."""
    return Path(os.environ.get("RAG_EVAL_OUT") or "evals/out")


def eval_set_path() -> Path:
    from evals.gold import DEFAULT_SET

    return Path(os.environ.get("RAG_EVAL_SET") or DEFAULT_SET)


def conversations_dir() -> Path:
    """Saved chats, beside the index folder by default ($RAG_CONVERSATIONS overrides)."""
    return Path(os.environ.get("RAG_CONVERSATIONS") or (index_dir().parent / "conversations"))


def index_dir() -> Path:
    return default_index_dir()


def corpus_dir() -> Path:
    return default_corpus_dir()


@st.cache_resource(show_spinner="Loading the embedding model…")
def get_embedder() -> Embedder:
    embedder = EMBEDDER_FACTORY()
    embedder.model  # load now, so the first question pays only for itself
    return embedder


@st.cache_resource(show_spinner="Loading the index…")
def _load_engine(path: str) -> Engine:
    return Engine.load(path, get_embedder())


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
        st.info(f"No documents to answer from yet: {md_escape(error)}. Add some on the Library page.",
                icon=":material/info:")
    else:
        st.error(md_escape(error), icon=":material/error:")


@st.cache_resource(show_spinner="Loading the answerer (the local model takes about 30 s)…")
def _load_answerer(_engine: Engine, spec: str, base_url: str, generation: str) -> Answerer:
    # A visitor may type any address: the server's OPENAI_API_KEY never goes to one (send_key=False).
    return _engine.answerer_for(spec, base_url or None, send_key=False)


def get_answerer(engine: Engine, settings: "Settings") -> Answerer:
    """One answerer per (spec, address, index generation), shared by sessions; the local model loads once."""
    if settings.answerer == "extractive":
        return engine.answerer
    return _load_answerer(engine, settings.answerer, settings.base_url, engine.index.generation)


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
    answerer: str  # a spec: extractive, local, ollama:MODEL or openai:MODEL
    base_url: str = ""


def sidebar_settings() -> Settings:
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, default)  # defaults via state, so a kept value never clashes with them
    with st.sidebar:
        st.subheader("Settings")
        top_k = st.slider("Paragraphs to retrieve (top-k)", 1, 20, key="top_k")
        mode = st.selectbox("Retrieval mode", MODES, key="mode",
                            help="hybrid adds BM25 and dense scores, each z-normalised over its candidates "
                                 "(z-score fusion, measured better than reciprocal rank fusion)")
        kind = st.selectbox("Answerer", ANSWERER_KINDS, key="answerer",
                            help="extractive quotes sentences (grounded by construction); the others generate "
                                 "with an LLM and every sentence's citation is verified")
        spec, base_url = kind, ""
        if kind in ("ollama", "openai"):
            model = st.text_input("Model", key="llm_model", placeholder=DEFAULT_MODELS[kind]) or DEFAULT_MODELS[kind]
            base_url = st.text_input("Server address", key="llm_url", placeholder=backend_address(f"{kind}:{model}"),
                                     help="any OpenAI-compatible server for openai (vLLM, llama.cpp, LM Studio); "
                                          "the key is read from OPENAI_API_KEY")
            spec = f"{kind}:{model}"
    return Settings(int(top_k), str(mode), spec, base_url.strip())
