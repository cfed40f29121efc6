"""The dense index: exact below a size, approximate (FAISS IVF-PQ, re-ranked exactly) above it.

Up to `exact_limit()` passages (200,000 by default, or $PARACITE_EXACT_LIMIT) the index is an
`IndexFlatIP`: exact cosine over every passage, as paracite always searched. Measured here (one core,
384 dims, the 4,000 nearest): 4.1 ms at 50k vectors, 7.4 ms at 100k, 12.6 ms at 200k, 24.4 ms at 400k,
and 1.5 GB of RAM per million; so past 200k a flat index costs the latency and memory budgets of a
1M-paragraph library (`bench/scale.py`).

Above it, an `IndexIVFPQ`: k-means cells over the vectors (about sqrt(n) of them, a power of two) and
48-byte product-quantised codes, so a million passages take about 56 MB of RAM. A query visits `nprobe`
cells, takes the `k` best codes, and re-ranks them by their exact vectors, read from the generation's
memory-mapped `vectors.f32`: scores are exact cosines and only the candidate set is approximate. It is
trained at ingest on a sample of the vectors; an ingest that adds passages adds their codes to the trained
index, until the index has grown `RETRAIN_GROWTH` times past the size it was trained on, when it is
trained again (on a fresh sample, from stored vectors: nothing is re-embedded).

Not handled: GPU indexes, indexes that do not fit on one machine's disk, filtered search.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

from rag.errors import BadArgument

LIMIT_ENV = "PARACITE_EXACT_LIMIT"
DEFAULT_EXACT_LIMIT = 200_000
RETRAIN_GROWTH = 4.0
PQ_BYTES = 48  # sub-quantisers per vector: 8 of the 384 dimensions each
TRAIN_PER_CELL = 40  # faiss's k-means warns below 39 points per centroid
_ADD_BLOCK = 65_536


def exact_limit() -> int:
    raw = os.environ.get(LIMIT_ENV)
    if raw is None:
        return DEFAULT_EXACT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 1:
        raise BadArgument(f"{LIMIT_ENV} must be a whole number of passages above 0, not {raw!r}")
    return value


def plan(count: int, dimension: int, limit: int | None = None) -> dict:
    """The manifest's `dense` section for an index of `count` vectors, before training."""
    if count <= (exact_limit() if limit is None else limit):
        return {"kind": "exact"}
    cells = 2 ** round(math.log2(max(math.sqrt(count), 2)))
    # Short of 256 training points per sub-quantiser centroid, use fewer centroids (a small test index).
    bits = max(4, min(8, int(math.log2(max(count // 4, 16)))))
    m = PQ_BYTES if dimension % PQ_BYTES == 0 else dimension // 8
    return {
        "kind": "ivfpq",
        "cells": cells,
        "pq": m,
        "bits": bits,
        "nprobe": min(cells, max(16, cells // 16)),
        "trained_on": count,
    }


def build(vectors: np.ndarray, spec: dict, seed: int = 0):
    """A new index of `vectors` (memory-mapped is fine: they are read in blocks) as `spec` says."""
    d = vectors.shape[1]
    if spec["kind"] == "exact":
        index = faiss.IndexFlatIP(d)
    else:
        index = faiss.index_factory(d, f"IVF{spec['cells']},PQ{spec['pq']}x{spec['bits']}", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        # A small index (a test's, with the limit lowered) trains on what it has; faiss would print a warning
        # per sub-quantiser for it. Large ones sample TRAIN_PER_CELL points per cell, above the advice.
        ivf.cp.min_points_per_centroid = 1
        ivfpq = faiss.downcast_index(ivf)
        ivfpq.pq.cp.min_points_per_centroid = 1
        # The factory turns on polysemous training (codes ordered for Hamming pre-filtering, which this search
        # never uses): 87 of the 87.6 s it took to train 128 cells here, for nothing.
        ivfpq.do_polysemous_training = False
        sample = _sample_rows(len(vectors), spec["cells"] * TRAIN_PER_CELL, seed)
        index.train(np.ascontiguousarray(vectors[sample], dtype=np.float32))
    add(index, vectors)
    return index


def add(index, vectors: np.ndarray) -> None:
    for start in range(0, len(vectors), _ADD_BLOCK):
        index.add(np.ascontiguousarray(vectors[start : start + _ADD_BLOCK], dtype=np.float32))


def needs_retraining(spec: dict, count: int, limit: int | None = None) -> bool:
    """Whether an index of `spec`, grown to `count` vectors, should be built anew rather than added to: it
    crossed the exact limit, or an approximate one outgrew its training `RETRAIN_GROWTH` times."""
    exact = count <= (exact_limit() if limit is None else limit)
    if exact != (spec.get("kind") == "exact"):
        return True
    return not exact and count > spec["trained_on"] * RETRAIN_GROWTH


def read(path: Path, spec: dict, mmap: bool = True):
    """Read an index file; an approximate one memory-mapped (its codes stay on disk until a query reads them)."""
    flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap and spec.get("kind") == "ivfpq" else 0
    index = faiss.read_index(str(path), flags)
    configure(index, spec)
    return index


def configure(index, spec: dict) -> None:
    if spec.get("kind") == "ivfpq":
        faiss.extract_index_ivf(index).nprobe = int(spec["nprobe"])


def is_exact(index) -> bool:
    return isinstance(index, faiss.IndexFlat)


def search(index, vectors: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, rows) of the `k` best passages, best first. Exact scores either way; exact candidates below
    the limit, IVF-PQ candidates above it (re-ranked by their stored vectors)."""
    q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    k = min(k, index.ntotal)
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    sims, rows = _one_thread(index.search, q, k)
    sims, rows = sims[0], rows[0]
    if is_exact(index):
        return sims, rows
    rows = rows[rows >= 0]
    order = np.argsort(rows)  # ascending rows read the memory map front to back
    exact = np.empty(len(rows), np.float32)
    exact[order] = np.asarray(vectors[rows[order]], dtype=np.float32) @ q[0]
    best = np.lexsort((rows, -exact))
    return exact[best], rows[best]


def _one_thread(search, *args):
    """One question on one OpenMP thread: on this 2-core machine under load, a 100k flat search took 10 ms on
    one thread and 43-48 ms on two (threads waiting on each other). The setting is the calling thread's
    (OpenMP's nthreads-var), and is put back, so an ingest's training keeps every core."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return search(*args)
    finally:
        faiss.omp_set_num_threads(before)


def _sample_rows(count: int, size: int, seed: int) -> np.ndarray:
    if count <= size:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))
