"""What every page shares: the cached model and engine, the folders, and the sidebar settings.

The embedder and the engine live in `st.cache_resource`, so they load once per server process
and are shared by all sessions (both are thread-safe for reading). The engine is reloaded when
a newer ingest has swapped in (`Engine.is_stale`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from rag.answer import Answerer
from rag.corpus import default_corpus_dir
from rag.embedding import Embedder
from rag.engine import Engine
from rag.errors import RagError
from rag.retrieval import Mode
from rag.store import default_index_dir

# The answerers the sidebar offers, by name. Add an LLM answerer here: name -> factory(engine).
ANSWERERS: dict[str, Callable[[Engine], Answerer]] = {
    "extractive": lambda engine: engine.answerer,
}
MODES = [m.value for m in (Mode.HYBRID, Mode.BM25, Mode.DENSE)]
DEFAULTS = {"top_k": 5, "mode": Mode.HYBRID.value, "answerer": "extractive"}
SETTING_KEYS = tuple(DEFAULTS)
# Tests set this to share their already-loaded embedder with the app (same process).
EMBEDDER_FACTORY: Callable[[], Embedder] = Embedder


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
        st.info(f"No documents to answer from yet: {e}. Add some on the Library page.", icon=":material/info:")
        return None
    return engine


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
    answerer: str


def sidebar_settings() -> Settings:
    for key, default in DEFAULTS.items():
        st.session_state.setdefault(key, default)  # defaults via state, so a kept value never clashes with them
    with st.sidebar:
        st.subheader("Settings")
        top_k = st.slider("Paragraphs to retrieve (top-k)", 1, 20, key="top_k")
        mode = st.selectbox("Retrieval mode", MODES, key="mode",
                            help="hybrid fuses BM25 and dense retrieval by reciprocal rank fusion")
        answerer = st.selectbox("Answerer", list(ANSWERERS), key="answerer")
    return Settings(int(top_k), str(mode), str(answerer))
