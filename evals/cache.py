"""The eval's embedding cache: corpus sentences embedded once per run, not once per question.

It changes no quality figure, only latency (which it lowers), so runs that use it say so.
"""

from __future__ import annotations

import numpy as np

from rag.sentences import split_sentences


class CachedEmbedder:
    """An `Embedder` that memoises `encode_queries` by text, so corpus sentences are embedded once per eval.

    The extractive answerer and the support check embed the same corpus sentences for question
    after question; caching them makes a 124-question run take seconds instead of minutes. It
    changes no figure except latency, which it lowers (see `evaluate(cache=...)`).
    """

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._cache: dict[str, np.ndarray] = {}

    @property
    def model(self):
        return self.inner.model

    def seed(self, texts, vectors) -> None:
        for t, v in zip(texts, vectors):
            self._cache.setdefault(t, np.asarray(v, dtype=np.float32))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            self.seed(missing, self.inner.encode_queries(missing))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def encode_documents(self, texts: list[str], progress=False, desc: str = "Embedding") -> np.ndarray:
        return self.encode_queries(texts)  # same encoder for both; re-ingests for the ablations hit the cache


def warm_cache(embedder: CachedEmbedder, content) -> None:
    """Seed with the index's chunk vectors (free) and embed every paragraph sentence in one batched call."""
    embedder.seed([c.text for c in content.passages], content.vectors)
    embedder.encode_queries(
        [s for p in content.paragraphs for s in split_sentences(p.text)] + [p.text for p in content.paragraphs]
    )
