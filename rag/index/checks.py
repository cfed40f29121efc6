"""Consistency checks of one generation, run when it is opened: the manifest's fields and counts against
the SQLite rows, the vectors, the FAISS index and the postings, and every passage's paragraph span.

A failed check raises `IndexDamaged` naming the file and what disagrees; `rag doctor` runs the same ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rag.errors import IndexDamaged
from rag.index.bm25 import Postings
from rag.index.layout import IndexContent


def check_manifest_fields(index_dir: Path, generation: str, manifest: dict) -> None:
    """The fields ingest relies on, beyond format and model (a hand edit can drop them)."""
    chunking = manifest.get("chunking")
    if not isinstance(chunking, dict) or not isinstance(chunking.get("max_words"), int):
        raise IndexDamaged(index_dir, f"{generation}/manifest.json has no chunking.max_words")
    for key in ("documents", "paragraphs", "chunks"):
        if not isinstance(manifest.get(key), int):
            raise IndexDamaged(index_dir, f"{generation}/manifest.json has no count of {key}")
    dense = manifest.get("dense")
    if not isinstance(dense, dict) or dense.get("kind") not in ("exact", "ivfpq"):
        raise IndexDamaged(index_dir, f"{generation}/manifest.json has no dense.kind (exact or ivfpq)")


def check_counts(index_dir: str | Path, generation: str, manifest: dict, counts: dict[str, int]) -> None:
    for key in ("documents", "paragraphs", "chunks"):
        if manifest.get(key) != counts[key]:
            raise IndexDamaged(
                index_dir,
                f"{generation}/manifest.json counts {manifest.get(key)} {key}, meta.sqlite holds {counts[key]}",
            )


def check_sizes(
    index_dir: str | Path,
    generation: str,
    manifest: dict,
    faiss_index,
    vectors: np.ndarray,
    postings: Postings,
    passage_span: np.ndarray,
) -> None:
    """The vectors, postings and layout arrays have one entry per chunk or paragraph the manifest counts."""
    passages, paragraphs = manifest["chunks"], manifest["paragraphs"]
    if faiss_index.ntotal != passages:
        raise IndexDamaged(
            index_dir,
            f"{generation}/vectors.faiss holds {faiss_index.ntotal} vectors for {passages} passages in meta.sqlite",
        )
    if postings.paragraphs != paragraphs:
        raise IndexDamaged(
            index_dir,
            f"{generation}/bm25 holds lengths of {postings.paragraphs} paragraphs for {paragraphs} in meta.sqlite",
        )
    if passage_span.shape != (passages, 2):
        raise IndexDamaged(
            index_dir, f"{generation}/chunk_paras.npy has shape {passage_span.shape}, not ({passages}, 2)"
        )
    if passages and (int(passage_span.min()) < 0 or int(passage_span.max()) >= paragraphs):
        raise IndexDamaged(index_dir, f"{generation}/chunk_paras.npy points outside the {paragraphs} paragraphs")


def check_passage_paragraphs(
    index_dir: str | Path, generation: str, content: IndexContent, passage_span: np.ndarray
) -> None:
    """Every chunk's paragraphs exist, at the positions chunk_paras.npy gives: a hit must resolve to paragraphs
    a person can read."""
    paras = {(p.doc_id, p.para): i for i, p in enumerate(content.paragraphs)}
    for c, (first, last) in zip(content.passages, np.asarray(passage_span).tolist()):
        missing = [n for n in range(c.para_start, c.para_end + 1) if (c.doc_id, n) not in paras]
        if missing or c.para_end < c.para_start:
            raise IndexDamaged(
                index_dir,
                f"{generation}: passage {c.passage_id} cites {c.doc_id} paragraph(s) "
                f"{missing or [c.para_start, c.para_end]}, which meta.sqlite does not hold",
            )
        if (paras[(c.doc_id, c.para_start)], paras[(c.doc_id, c.para_end)]) != (first, last):
            raise IndexDamaged(
                index_dir,
                f"{generation}/chunk_paras.npy places passage {c.passage_id} at positions "
                f"{first}-{last}, not where meta.sqlite holds its paragraphs",
            )
