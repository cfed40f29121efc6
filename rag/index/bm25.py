"""BM25 postings that live on disk: built in blocks at ingest, memory-mapped at load, scored per query.

Scoring is bm25s's Lucene BM25 (Kamphuis et al., ECIR 2020), tokens as bm25s makes them (lowercase,
words of two or more characters, English stopwords dropped, Snowball English stems; a paragraph with no
word left counts as one empty token). Unlike bm25s, which stores a score per (term, paragraph) and so must
rebuild everything when the collection's statistics change, the postings keep raw term frequencies
and paragraph lengths; idf and length normalisation are computed at query time from them. So an ingest
that adds documents appends postings (`write_postings` with `base=`) instead of re-tokenising every
paragraph, and a 1M-paragraph index loads in milliseconds: nothing is built in RAM at start.

Files of one postings folder (all `.npy`, no pickle):
    indptr.npy   int64 (terms + 1): term t's postings are [indptr[t], indptr[t + 1])
    docs.npy     int32: paragraph positions, ascending within a term
    tf.npy       int32: how often the term occurs in that paragraph
    lengths.npy  int32 (paragraphs): tokens per paragraph, as BM25 normalises by them
    impacts.npy  float32, one per posting: its term-frequency part, tf / (tf + k1 (1 - b + b len / avglen)),
                 computed when the folder is written (every write, appends included, rewrites the postings,
                 so the average length is the folder's own). A query multiplies it by the term's idf instead
                 of gathering each posting's paragraph length: 7.6 ms per million postings where the
                 computation took 24 ms (measured here), which is most of a question at 10M paragraphs.
                 A folder without it (written before it existed) is scored the old way, to the same ranking.

The vocabulary (`Vocabulary`: stems and words -> term ids) is the caller's: dicts in memory, or the `terms`
and `words` tables of the index's meta.sqlite (`rag.index.layout`), so that a query looks up its few words
instead of loading every term.

Not handled: deleting paragraphs in place (a removal rewrites the postings), phrase or proximity queries.
"""

from __future__ import annotations

import functools
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN

K1 = 1.2
B = 0.75
FILES = ("indptr.npy", "docs.npy", "tf.npy", "lengths.npy")
IMPACTS = "impacts.npy"  # optional: see the module's docstring
_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default splitter
_STOPWORDS = frozenset(STOPWORDS_EN)
# Postings copied or scattered per step when writing: bounds the writer's memory, not the index's size.
_STEP = 8_000_000


def words(text: str) -> list[str]:
    """The words BM25 matches, before stemming: lowercase, two or more characters, no English stopword.

    >>> words("The duties were imposed on imported cars.")
    ['duties', 'were', 'imposed', 'imported', 'cars']
    """
    return [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


class Vocabulary:
    """Words and their stems -> term ids, growing as a build meets new ones; ids are dense and never change.

    A paragraph's term is its word's stem (the empty term for a paragraph without words). A query matches
    only words that some paragraph holds verbatim (`word_ids`): bm25s looks query words up that way, and
    paracite's rankings were tuned with it.

    >>> v = Vocabulary()
    >>> v.encode(words("Votes were voted.")), v.encode([]), v.word_ids(["vote", "voted"])
    ([0, 1, 0], [2], [None, 0])
    """

    def __init__(self, stems: dict[str, int] | None = None, words: dict[str, int] | None = None):
        self.ids = dict(stems or {})  # stem -> term id
        self.words = dict(words or {})  # word as found in a paragraph -> term id
        self.new_stems: list[str] = []  # added since construction, in id order (what a writer must store)
        self.new_words: list[str] = []
        self._stemmer = Stemmer.Stemmer("english")  # not thread-safe: one per vocabulary, used by one writer

    def __len__(self) -> int:
        return len(self.ids)

    def encode(self, paragraph_words: list[str]) -> list[int]:
        """Term ids of one paragraph's words (`words`), learning new words and stems."""
        out = []
        for w in paragraph_words or [""]:
            i = self.words.get(w)
            if i is None:
                stem = self._stemmer.stemWord(w) if w else ""
                i = self.ids.get(stem)
                if i is None:
                    i = self.ids[stem] = len(self.ids)
                    self.new_stems.append(stem)
                if w:
                    self.words[w] = i
                    self.new_words.append(w)
            out.append(i)
        return out

    def word_ids(self, query_words: list[str]) -> list[int | None]:
        return [self.words.get(w) for w in query_words]


@dataclass(frozen=True)
class Postings:
    """BM25 over paragraphs by position; arrays in memory or memory-mapped."""

    indptr: np.ndarray
    docs: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray
    impacts: np.ndarray | None = None
    k1: float = K1
    b: float = B

    @property
    def paragraphs(self) -> int:
        return len(self.lengths)

    @functools.cached_property
    def average_length(self) -> float:
        return float(np.mean(self.lengths, dtype=np.float64))

    @property
    def terms(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def empty(cls) -> Postings:
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    @classmethod
    def build(cls, texts: Sequence[str], vocabulary: Vocabulary) -> Postings:
        """In memory, for a retriever over a list of paragraphs (tests, the BEIR evals)."""
        term_ids = [vocabulary.encode(words(t)) for t in texts]
        block = _block(term_ids, 0)
        counts = np.bincount(block[0], minlength=len(vocabulary)).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        lengths = np.asarray([len(t) for t in term_ids], np.int32).reshape(-1)
        return cls(indptr, block[1], block[2], lengths, impacts(block[1], block[2], lengths))

    @classmethod
    def load(cls, folder: Path) -> Postings:
        """Memory-mapped: pages are read on demand, so loading costs no time and no resident memory."""
        a = {name: np.load(folder / name, mmap_mode="r", allow_pickle=False) for name in FILES}
        extra = np.load(folder / IMPACTS, mmap_mode="r", allow_pickle=False) if (folder / IMPACTS).exists() else None
        return cls(a["indptr.npy"], a["docs.npy"], a["tf.npy"], a["lengths.npy"], extra)

    def check(self) -> str | None:
        """What is inconsistent about the arrays, or None (cheap: no scan of the postings)."""
        if self.indptr.ndim != 1 or len(self.indptr) < 1 or int(self.indptr[0]) != 0:
            return "indptr.npy does not start at 0"
        if int(self.indptr[-1]) != len(self.docs) or len(self.docs) != len(self.tf):
            return (
                f"indptr.npy ends at {int(self.indptr[-1])}, but docs.npy and tf.npy hold {len(self.docs)} "
                f"and {len(self.tf)} postings"
            )
        if self.impacts is not None and len(self.impacts) != len(self.docs):
            return f"impacts.npy holds {len(self.impacts)} values for {len(self.docs)} postings"
        return None

    def _idf(self, df: int) -> np.float32:
        n = self.paragraphs
        return np.float32(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def scores(self, term_ids: list[int], depth: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(positions ascending, float32 scores) of every paragraph holding a query term; with `depth`, only
        of those that can be among the `depth` best (a superset of them: every one scoring at least the
        depth-th best of some one term's paragraphs, which is no more than the depth-th best of all).

        The sum of each term's score in the order given, in float32, as bm25s adds its stored scores:
        idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 * (1 - b + b * len / avglen)).
        """
        n = self.paragraphs
        if not term_ids or n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        stored = self.impacts is not None and (self.k1, self.b) == (K1, B)
        acc = np.zeros(n, np.float32)
        floor, sample = 0.0, None  # the one term's paragraphs that give the floor: the rarest with `depth` of them
        for t in term_ids:
            start, end = int(self.indptr[t]), int(self.indptr[t + 1])
            if start == end:
                continue
            docs = np.asarray(self.docs[start:end])
            idf = self._idf(end - start)
            if stored:
                part = np.asarray(self.impacts[start:end])
            else:
                part = _impacts(self.tf[start:end], self.lengths[docs], self.average_length, self.k1, self.b)
            acc[docs] += idf * part  # docs are unique within a term
            if depth is not None and end - start >= depth and (sample is None or end - start < len(sample)):
                sample = docs
        if sample is not None:
            floor = float(np.partition(acc[sample], len(sample) - depth)[len(sample) - depth])
        # Every posting scores above 0 (idf > 0, tf >= 1), so the paragraphs that hold a term are the non-zeros:
        # one pass over n floats, where np.unique over the postings took 49 ms a question at 1M paragraphs. With
        # a floor, the pass keeps only what can reach it: at 10M paragraphs, matches run to millions.
        positions = np.flatnonzero(acc >= floor) if floor > 0 else np.flatnonzero(acc)
        return positions, acc[positions]

    def top(self, term_ids: list[int], depth: int) -> dict[int, float]:
        """The `depth` best paragraphs with a positive score, best first; ties by position, as a stable sort gives."""
        positions, scores = self.scores(term_ids, depth)
        keep = scores > 0
        positions, scores = positions[keep], scores[keep]
        if len(scores) > depth:
            # Everything at or above the depth-th score, ties included, then a stable sort: the same paragraphs
            # in the same order as sorting all of them, without sorting all of them.
            cut = np.partition(-scores, depth - 1)[depth - 1]
            keep = -scores <= cut
            positions, scores = positions[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[:depth]
        return {int(p): float(s) for p, s in zip(positions[order], scores[order])}


def impacts(docs: np.ndarray, tf: np.ndarray, lengths: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Each posting's term-frequency part of its BM25 score (float32), in blocks, into `out` if given
    (memory-mapped input and output are fine: the memory used is one block)."""
    out = np.empty(len(docs), np.float32) if out is None else out
    lengths = np.asarray(lengths)
    avg = float(np.mean(lengths, dtype=np.float64)) if len(lengths) else 1.0
    for start in range(0, len(docs), _STEP):
        end = min(start + _STEP, len(docs))
        out[start:end] = _impacts(tf[start:end], lengths[np.asarray(docs[start:end])], avg, K1, B)
    return out


def write_impacts(folder: Path) -> None:
    """Write `impacts.npy` for a postings folder from its own docs, tf and lengths (an older folder too)."""
    p = Postings.load(folder)
    scratch = folder / "impacts.tmp.npy"
    out = np.lib.format.open_memmap(scratch, "w+", np.float32, (len(p.docs),))
    impacts(p.docs, p.tf, p.lengths, out)
    out.flush()
    del out
    scratch.replace(folder / IMPACTS)


def _impacts(tf: np.ndarray, lengths: np.ndarray, avg: float, k1: float, b: float) -> np.ndarray:
    tf = np.asarray(tf, dtype=np.float32)
    norm = k1 * ((1 - b) + b * np.asarray(lengths, dtype=np.float64) / avg)
    return (tf / (norm + tf)).astype(np.float32)


def _block(term_ids: list[list[int]], first_position: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(terms, positions, tfs) of paragraphs, sorted by term and then position: one block of postings."""
    lengths = np.fromiter((len(t) for t in term_ids), np.int64, len(term_ids))
    if not lengths.sum():
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32)
    terms = np.fromiter((t for ts in term_ids for t in ts), np.int64, int(lengths.sum()))
    docs = np.repeat(np.arange(len(term_ids), dtype=np.int64), lengths)
    keys, tf = np.unique(terms * len(term_ids) + docs, return_counts=True)
    return (
        (keys // len(term_ids)).astype(np.int32),
        (keys % len(term_ids) + first_position).astype(np.int32),
        tf.astype(np.int32),
    )


class PostingsWriter:
    """Writes a postings folder from blocks of paragraphs, after the postings of `base` when appending.

    Blocks wait in a scratch folder beside the output (so the writer's memory stays one block), and
    `finish` scatters them, term by term, into the final arrays.
    """

    def __init__(self, folder: Path, vocabulary: Vocabulary, base: Postings | None = None):
        self.folder = folder
        self.vocabulary = vocabulary
        self.base = base
        self._scratch = folder / "blocks"
        self._scratch.mkdir(parents=True)
        self._blocks: list[Path] = []
        self._lengths: list[np.ndarray] = []
        self._next = base.paragraphs if base is not None else 0

    def add(self, texts: list[str]) -> None:
        """The next paragraphs, in position order."""
        term_ids = [self.vocabulary.encode(words(t)) for t in texts]
        terms, docs, tf = _block(term_ids, self._next)
        path = self._scratch / f"{len(self._blocks):06d}.npz"
        np.savez(path, terms=terms, docs=docs, tf=tf)
        self._blocks.append(path)
        self._lengths.append(np.fromiter((len(t) for t in term_ids), np.int32, len(term_ids)))
        self._next += len(texts)

    def finish(self) -> Postings:
        n_terms = len(self.vocabulary)
        counts = np.zeros(n_terms, np.int64)
        base = self.base
        if base is not None:
            counts[: base.terms] = np.diff(np.asarray(base.indptr))
        for path in self._blocks:
            with np.load(path, allow_pickle=False) as z:
                counts += np.bincount(z["terms"], minlength=n_terms)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(indptr[-1])
        np.save(self.folder / "indptr.npy", indptr, allow_pickle=False)
        docs = np.lib.format.open_memmap(self.folder / "docs.npy", "w+", np.int32, (total,))
        tf = np.lib.format.open_memmap(self.folder / "tf.npy", "w+", np.int32, (total,))
        fill = indptr[:-1].copy()  # where each term's next posting goes
        if base is not None:
            for start in range(0, len(base.docs), _STEP):
                end = min(start + _STEP, len(base.docs))
                index = np.arange(start, end, dtype=np.int64)
                terms = np.searchsorted(np.asarray(base.indptr), index, side="right") - 1
                _scatter(terms, np.asarray(base.docs[start:end]), np.asarray(base.tf[start:end]), fill, docs, tf)
        for path in self._blocks:
            with np.load(path, allow_pickle=False) as z:
                _scatter(z["terms"], z["docs"], z["tf"], fill, docs, tf)
        docs.flush()
        tf.flush()
        del docs, tf
        lengths = [np.asarray(base.lengths)] if base is not None else []
        np.save(
            self.folder / "lengths.npy",
            np.concatenate(lengths + self._lengths + [np.zeros(0, np.int32)]),
            allow_pickle=False,
        )
        shutil.rmtree(self._scratch)
        write_impacts(self.folder)
        return Postings.load(self.folder)


def _scatter(
    terms: np.ndarray, docs_in: np.ndarray, tf_in: np.ndarray, fill: np.ndarray, docs: np.ndarray, tf: np.ndarray
) -> None:
    """Place postings sorted by term (positions ascending within a term) after those already placed."""
    if not len(terms):
        return
    terms = terms.astype(np.int64)
    starts = np.flatnonzero(np.concatenate([[True], terms[1:] != terms[:-1]]))
    run_terms = terms[starts]
    run_lengths = np.diff(np.concatenate([starts, [len(terms)]]))
    offset = np.arange(len(terms), dtype=np.int64) - np.repeat(starts, run_lengths)
    dest = fill[terms] + offset
    docs[dest] = docs_in
    tf[dest] = tf_in
    fill[run_terms] += run_lengths
