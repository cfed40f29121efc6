"""Sentence vectors, embedded once at ingest, so that answering a question embeds only the question.

The extractive answerer scores every sentence of the retrieved paragraphs by its cosine to the
question. Embedding those sentences per question cost about 0.2 s of CPU, under the embedder lock
that all sessions share; read from disk, they cost a slice of a memory-mapped array.

Stored in each generation, by paragraph position (`rag.index.layout`):

    sentences.f32         float32 (sentences, dimension), raw: the sentences of `split_sentences(p.text)`
                          of each paragraph, consecutively, paragraph after paragraph
    sentence_offsets.npy  int64 (paragraphs + 1): the paragraph at position i owns rows offsets[i]:offsets[i+1]

A table row's vector is that of its compact form (`vector_texts`): the row label and values, without the
column labels every row of the table repeats; on the 20 10-Q filings this cut the sentence pass's
word pieces by a third (README, evals/sec10q/README.md).

An append (`rag.index.writer.GenerationWriter(base=...)`) copies both and continues them. A generation
without the files (written by a bench that stores none) answers by embedding sentences per
question, as does a paragraph whose stored count no longer matches `split_sentences` (the splitter
changed since ingest).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.documents import Paragraph
from rag.errors import IndexDamaged
from rag.load.table_text import compact_lines
from rag.sentences import split_sentences

VECTORS_FILE = "sentences.f32"
OFFSETS_FILE = "sentence_offsets.npy"


@dataclass(frozen=True)
class SentenceVectors:
    offsets: np.ndarray  # int64, paragraphs + 1
    vectors: np.ndarray  # float32 (offsets[-1], dimension), memory-mapped
    position: Callable[[str, int], int | None]  # (doc_id, para) -> paragraph position, or None

    def of(self, doc_id: str, para: int, count: int | None = None) -> np.ndarray | None:
        """The paragraph's sentence vectors, or None when it has none stored (or not `count` of them)."""
        i = self.position(doc_id, para)
        if i is None or not 0 <= i < len(self.offsets) - 1:
            return None
        start, end = int(self.offsets[i]), int(self.offsets[i + 1])
        if count is not None and end - start != count:
            return None
        return np.asarray(self.vectors[start:end], dtype=np.float32)


def vector_texts(paragraph: Paragraph) -> list[str]:
    """The text embedded for each sentence of `split_sentences(paragraph.text)`, in order: the sentence itself, or,
    for a table row, its label and values (`rag.load.table_text.compact_lines`). The answerer embeds the same texts
    when a paragraph has no stored vectors, so both paths compare the question with the same thing."""
    sentences = split_sentences(paragraph.text)
    if paragraph.table is None:
        return sentences
    compact = compact_lines(paragraph.table)
    return [compact.get(s, s) for s in sentences]


def embed_blocks(
    paragraphs: Sequence[Paragraph],
    known: Callable[[Paragraph], np.ndarray | None],
    embed: Callable[[list[str]], np.ndarray],
    dimension: int,
    reuse: dict[str, np.ndarray] | None = None,
) -> tuple[list[np.ndarray], int]:
    """One block of sentence vectors per paragraph, in the order given: from `known` (an earlier generation's,
    when its count still matches), from `reuse` (vectors already computed for the same text, e.g. a
    one-sentence paragraph's chunk), the rest by one `embed` call over the distinct new texts. Returns the
    blocks and how many texts were embedded."""
    split = [vector_texts(p) for p in paragraphs]
    old = [known(p) for p in paragraphs]
    reuse = dict(reuse or {})
    missing = list(
        dict.fromkeys(s for sents, v in zip(split, old) if not _fits(v, sents) for s in sents if s not in reuse)
    )
    if missing:
        reuse.update(zip(missing, embed(missing)))
    blocks = [
        np.asarray(v, dtype=np.float32)
        if _fits(v, sents)
        else np.asarray([reuse[s] for s in sents], dtype=np.float32).reshape(len(sents), dimension)
        for sents, v in zip(split, old)
    ]
    return blocks, len(missing)


def _fits(vectors: np.ndarray | None, sentences: list[str]) -> bool:
    return vectors is not None and len(vectors) == len(sentences)


def load(
    folder: Path, paragraphs: int, dimension: int, index_dir: Path, position: Callable[[str, int], int | None]
) -> SentenceVectors | None:
    """A generation's sentence vectors, memory-mapped; None for a generation written without them.

    Raises `IndexDamaged` when the files are here but disagree with each other or with the paragraphs."""
    vectors_file, offsets_file = folder / VECTORS_FILE, folder / OFFSETS_FILE
    if not vectors_file.exists() and not offsets_file.exists():
        return None
    try:
        offsets = np.load(offsets_file, allow_pickle=False)
        size = vectors_file.stat().st_size
    except (OSError, ValueError) as e:
        raise IndexDamaged(index_dir, f"{folder.name}/{OFFSETS_FILE} or {VECTORS_FILE} cannot be read ({e})") from e
    if (
        offsets.ndim != 1
        or len(offsets) != paragraphs + 1
        or offsets[0] != 0
        or np.any(np.diff(offsets) < 0)
        or size != int(offsets[-1]) * dimension * 4
    ):
        raise IndexDamaged(
            index_dir,
            f"{folder.name}/{OFFSETS_FILE} and {VECTORS_FILE} ({size} bytes) do not match "
            f"{paragraphs} paragraphs of {dimension}-dimensional sentence vectors",
        )
    count = int(offsets[-1])
    vectors = (
        np.memmap(vectors_file, dtype=np.float32, mode="r", shape=(count, dimension))
        if count
        else np.zeros((0, dimension), np.float32)
    )
    return SentenceVectors(offsets, vectors, position)
