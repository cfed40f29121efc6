"""Sentence vectors, embedded once at ingest, so that answering a question embeds only the question.

The extractive answerer scores every sentence of the retrieved paragraphs by its cosine to the
question. Embedding those sentences per question cost about 0.2 s of CPU, under the embedder lock
that all sessions share; read from disk, they cost a slice of a memory-mapped array.

Stored in each generation, in the order meta.sqlite lists paragraphs (by doc_id, then para):

    sentences.npy         float32 (sentences, dimension): the sentences of `split_sentences(p.text)`
                          for each paragraph, consecutively
    sentence_offsets.npy  int64 (paragraphs + 1): paragraph i owns rows offsets[i]:offsets[i+1]

A generation written before sentence vectors existed has neither file: its answers embed sentences
per question as before, and the next ingest adds them. A paragraph whose stored count no longer
matches `split_sentences` (the splitter changed since ingest) is embedded per question too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.documents import Paragraph
from rag.errors import IndexDamaged
from rag.sentences import split_sentences

VECTORS_FILE = "sentences.npy"
OFFSETS_FILE = "sentence_offsets.npy"

Key = tuple[str, int]  # (doc_id, para)


@dataclass(frozen=True)
class SentenceVectors:
    keys: tuple[Key, ...]  # sorted by (doc_id, para), as meta.sqlite lists paragraphs
    offsets: np.ndarray  # int64, len(keys) + 1
    vectors: np.ndarray  # float32 (offsets[-1], dimension); memory-mapped when loaded
    _position: dict[Key, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_position", {k: i for i, k in enumerate(self.keys)})

    def of(self, doc_id: str, para: int, count: int | None = None) -> np.ndarray | None:
        """The paragraph's sentence vectors, or None when it has none stored (or not `count` of them)."""
        i = self._position.get((doc_id, para))
        if i is None:
            return None
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if count is not None and end - start != count:
            return None
        return np.asarray(self.vectors[start:end], dtype=np.float32)

    def by_paragraph(self) -> dict[Key, np.ndarray]:
        return {k: self.vectors[self.offsets[i]:self.offsets[i + 1]] for i, k in enumerate(self.keys)}

    def save(self, folder: Path) -> list[str]:
        """Write both files into a generation folder; returns their names (for fsync)."""
        np.save(folder / VECTORS_FILE, np.ascontiguousarray(self.vectors, dtype=np.float32), allow_pickle=False)
        np.save(folder / OFFSETS_FILE, np.asarray(self.offsets, dtype=np.int64), allow_pickle=False)
        return [VECTORS_FILE, OFFSETS_FILE]


def build(paragraphs: list[Paragraph], known: dict[Key, np.ndarray], embed: Callable[[list[str]], np.ndarray],
          dimension: int, reuse: dict[str, np.ndarray] | None = None) -> tuple[SentenceVectors, int]:
    """Vectors for every sentence of `paragraphs`: from `known` (an earlier generation's, by paragraph, when the
    count still matches), from `reuse` (vectors already computed for the same text, e.g. a one-sentence
    paragraph's chunk), the rest by one `embed` call over the distinct new texts. Returns them and how many
    texts were embedded."""
    ordered = sorted(paragraphs, key=lambda p: (p.doc_id, p.para))
    split = [split_sentences(p.text) for p in ordered]
    reuse = dict(reuse or {})
    missing = list(dict.fromkeys(s for p, sents in zip(ordered, split)
                                 if not _fits(known.get((p.doc_id, p.para)), sents)
                                 for s in sents if s not in reuse))
    if missing:
        reuse.update(zip(missing, embed(missing)))
    parts, offsets = [], [0]
    for p, sents in zip(ordered, split):
        old = known.get((p.doc_id, p.para))
        block = (np.asarray(old, dtype=np.float32) if _fits(old, sents)
                 else np.asarray([reuse[s] for s in sents], dtype=np.float32).reshape(len(sents), dimension))
        parts.append(block)
        offsets.append(offsets[-1] + len(sents))
    vectors = np.vstack(parts) if parts else np.zeros((0, dimension), np.float32)
    return SentenceVectors(tuple((p.doc_id, p.para) for p in ordered), np.asarray(offsets, np.int64), vectors), \
        len(missing)


def _fits(vectors: np.ndarray | None, sentences: list[str]) -> bool:
    return vectors is not None and len(vectors) == len(sentences)


def load(folder: Path, keys: list[Key], dimension: int, index_dir: Path) -> SentenceVectors | None:
    """A generation's sentence vectors, memory-mapped; None for a generation written without them.

    Raises `IndexDamaged` when the files are here but disagree with each other or with the paragraphs."""
    vectors_file, offsets_file = folder / VECTORS_FILE, folder / OFFSETS_FILE
    if not vectors_file.exists() and not offsets_file.exists():
        return None
    where = f"{folder.name}/{VECTORS_FILE}"
    try:
        vectors = np.load(vectors_file, mmap_mode="r", allow_pickle=False)
        offsets = np.load(offsets_file, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IndexDamaged(index_dir, f"{where} or {OFFSETS_FILE} cannot be read ({e})") from e
    if vectors.ndim != 2 or vectors.shape[1] != dimension or vectors.dtype != np.float32:
        raise IndexDamaged(index_dir, f"{where} holds {vectors.dtype} {vectors.shape}, not float32 (n, {dimension})")
    if (offsets.ndim != 1 or len(offsets) != len(keys) + 1 or offsets[0] != 0 or offsets[-1] != len(vectors)
            or np.any(np.diff(offsets) < 0)):
        raise IndexDamaged(index_dir, f"{folder.name}/{OFFSETS_FILE} does not match {len(keys)} paragraphs "
                                      f"and {len(vectors)} sentence vectors")
    return SentenceVectors(tuple(keys), offsets, vectors)
