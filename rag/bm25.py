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
    term_max.npy float32 (terms): each term's largest impact, so that idf * term_max bounds what the term can
                 add to any paragraph's score. With it, `top` skips what cannot reach the top `depth`
                 (below); without it, `top` scores every posting of every query term.

Pruning (`Postings.top`), exact: the query's terms are read fully in order of their bound, highest first
(rare terms: short lists), until the depth-th best partial score is above the sum of the bounds of the
terms left, so no paragraph that holds none of the terms read can still reach the top. Only the paragraphs
read so far whose partial score plus that sum can still reach it are scored for the remaining terms, by
binary search in those terms' lists, and every survivor's score is then summed term by term in the query's
order, as scoring every posting sums it: the same paragraphs, the same float32 scores, the same order (tested
against bm25s and against scoring every posting). At 10M paragraphs a question's terms hold about 1.8M
postings (median), and matching paragraphs run to millions: scoring all of them took 90 ms of CPU.

The vocabulary (`Vocabulary`: stems and words -> term ids) is the caller's: dicts in memory, or the `terms`
and `words` tables of the index's meta.sqlite (`rag.store`), so that a query looks up its few words
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
IMPACTS, TERM_MAX = "impacts.npy", "term_max.npy"  # optional: see the module's docstring
# Pruning gives up, and every posting is scored, once the terms read fully hold more postings than this share
# of the paragraphs (a question of only common words: nothing to skip, and merging sorted lists costs more).
# Measured at 10M paragraphs, 150 real questions, CPU per question p50 / p95: no pruning 90 / 184 ms; share
# 0.02: 96 / 193; 0.05: 48 / 209; 0.1: 46 / 137; 0.2: 48 / 131 (it gave up on 110, 46, 8 and 0 questions).
_PRUNE_SHARE = 0.1
_MARGIN = 1e-4  # relative slack on bounds and partial sums, for float32 rounding
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
    term_max: np.ndarray | None = None
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
    def empty(cls) -> "Postings":
        return cls(np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32))

    @classmethod
    def build(cls, texts: Sequence[str], vocabulary: Vocabulary) -> "Postings":
        """In memory, for a retriever over a list of paragraphs (tests, the BEIR evals)."""
        term_ids = [vocabulary.encode(words(t)) for t in texts]
        block = _block(term_ids, 0)
        counts = np.bincount(block[0], minlength=len(vocabulary)).astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        lengths = np.asarray([len(t) for t in term_ids], np.int32).reshape(-1)
        stored = impacts(block[1], block[2], lengths)
        return cls(indptr, block[1], block[2], lengths, stored, term_max(indptr, stored))

    @classmethod
    def load(cls, folder: Path) -> "Postings":
        """Memory-mapped: pages are read on demand, so loading costs no time and no resident memory."""
        a = {name: np.load(folder / name, mmap_mode="r", allow_pickle=False) for name in FILES}
        extra = [np.load(folder / name, mmap_mode="r", allow_pickle=False) if (folder / name).exists() else None
                 for name in (IMPACTS, TERM_MAX)]
        return cls(a["indptr.npy"], a["docs.npy"], a["tf.npy"], a["lengths.npy"], *extra)

    def check(self) -> str | None:
        """What is inconsistent about the arrays, or None (cheap: no scan of the postings)."""
        if self.indptr.ndim != 1 or len(self.indptr) < 1 or int(self.indptr[0]) != 0:
            return "indptr.npy does not start at 0"
        if int(self.indptr[-1]) != len(self.docs) or len(self.docs) != len(self.tf):
            return f"indptr.npy ends at {int(self.indptr[-1])}, but docs.npy and tf.npy hold {len(self.docs)} " \
                   f"and {len(self.tf)} postings"
        if self.impacts is not None and len(self.impacts) != len(self.docs):
            return f"impacts.npy holds {len(self.impacts)} values for {len(self.docs)} postings"
        if self.term_max is not None and len(self.term_max) != self.terms:
            return f"term_max.npy holds {len(self.term_max)} values for {self.terms} terms"
        return None

    @property
    def _stored(self) -> bool:
        return self.impacts is not None and (self.k1, self.b) == (K1, B)

    def _idf(self, df: int) -> np.float32:
        n = self.paragraphs
        return np.float32(np.log(1 + (n - df + 0.5) / (df + 0.5)))

    def scores(self, term_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(positions ascending, float32 scores) of every paragraph holding a query term.

        The sum of each term's score in the order given, in float32, as bm25s adds its stored scores:
        idf = ln(1 + (N - df + 0.5) / (df + 0.5)), tf part = tf / (tf + k1 * (1 - b + b * len / avglen)).
        """
        n = self.paragraphs
        if not term_ids or n == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        stored = self._stored
        acc = np.zeros(n, np.float32)
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
        # Every posting scores above 0 (idf > 0, tf >= 1), so the paragraphs that hold a term are the non-zeros:
        # one pass over n floats, where np.unique over the postings took 49 ms a question at 1M paragraphs.
        positions = np.flatnonzero(acc)
        return positions, acc[positions]

    def top(self, term_ids: list[int], depth: int, prune: bool = True) -> dict[int, float]:
        """The `depth` best paragraphs with a positive score, best first; ties by position, as a stable sort gives.
        Pruned (see the module's docstring) where the folder has `term_max.npy`, unless `prune` is False."""
        found = self._pruned(term_ids, depth) if prune and self.term_max is not None and self._stored else None
        positions, scores = found if found is not None else self.scores(term_ids)
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

    def _pruned(self, term_ids: list[int], depth: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(positions ascending, exact scores) of a set of paragraphs that holds every paragraph of the top
        `depth`, or None where pruning gives up (then every posting is scored)."""
        spans = {}
        for t in term_ids:
            start, end = int(self.indptr[t]), int(self.indptr[t + 1])
            if start < end and t not in spans:
                spans[t] = (start, end, self._idf(end - start))
        if not spans or depth < 1:
            return None
        times = {t: term_ids.count(t) for t in spans}
        bound = {t: float(spans[t][2]) * float(self.term_max[t]) * times[t] * (1 + _MARGIN) for t in spans}
        order = sorted(spans, key=lambda t: (-bound[t], t))
        left = sum(bound.values())
        positions, partial = np.zeros(0, np.int64), np.zeros(0, np.float64)
        read, budget, cut = 0, _PRUNE_SHARE * self.paragraphs, 0.0
        for i, t in enumerate(order):
            if len(positions) >= depth:
                cut = float(np.partition(partial, len(partial) - depth)[len(partial) - depth]) * (1 - _MARGIN)
                if cut > left:
                    break
            start, end, idf = spans[t]
            read += end - start
            if read > budget:
                return None
            positions, partial = _merge(positions, partial, np.asarray(self.docs[start:end]),
                                        times[t] * float(idf) * np.asarray(self.impacts[start:end], np.float64))
            left -= bound[t]
        else:
            i = len(order)
        for t in order[i:]:  # the rest of the terms, only for the paragraphs that can still reach the cut
            keep = partial + max(left, 0.0) >= cut
            positions, partial = positions[keep], partial[keep]
            start, end, idf = spans[t]
            at, hit = _find(self.docs[start:end], positions)
            partial[hit] += times[t] * float(idf) * np.asarray(self.impacts[start:end][at[hit]], np.float64)
            left -= bound[t]
            if len(partial) >= depth:
                cut = max(cut, float(np.partition(partial, len(partial) - depth)[len(partial) - depth]) * (1 - _MARGIN))
        positions = positions[partial + max(left, 0.0) >= cut]
        scores = np.zeros(len(positions), np.float32)
        for t in term_ids:  # every survivor's exact score, summed in the query's order
            if t not in spans:
                continue
            start, end, idf = spans[t]
            at, hit = _find(self.docs[start:end], positions)
            scores[hit] += idf * np.asarray(self.impacts[start:end][at[hit]])
        return positions, scores


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


def term_max(indptr: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Each term's largest impact (0 for a term without postings), read in blocks of terms."""
    indptr = np.asarray(indptr)
    out = np.zeros(len(indptr) - 1, np.float32)
    t = 0
    while t < len(out):
        last = int(np.searchsorted(indptr, indptr[t] + _STEP, side="right")) - 1  # terms within one step
        last = min(max(last, t + 1), len(out))
        starts = indptr[t:last]
        nonempty = np.flatnonzero(np.diff(indptr[t:last + 1]))
        if len(nonempty):
            block = np.asarray(stored[int(starts[0]):int(indptr[last])])
            out[t + nonempty] = np.maximum.reduceat(block, starts[nonempty] - starts[0])
        t = last
    return out


def write_impacts(folder: Path) -> None:
    """Write `impacts.npy` and `term_max.npy` for a postings folder from its own docs, tf and lengths (an
    older folder too)."""
    p = Postings.load(folder)
    scratch = folder / "impacts.tmp.npy"
    out = np.lib.format.open_memmap(scratch, "w+", np.float32, (len(p.docs),))
    impacts(p.docs, p.tf, p.lengths, out)
    out.flush()
    np.save(folder / TERM_MAX, term_max(p.indptr, out), allow_pickle=False)
    del out
    scratch.replace(folder / IMPACTS)


def _find(docs: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `positions` (sorted) is in `docs` (sorted), and whether it is there at all."""
    at = np.searchsorted(docs, positions)
    hit = at < len(docs)
    hit[hit] = np.asarray(docs[at[hit]]) == positions[hit]
    return at, hit


def _merge(positions: np.ndarray, partial: np.ndarray, docs: np.ndarray, add: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted positions and partial scores, with one term's postings (sorted, unique) added."""
    at = np.searchsorted(positions, docs)
    old = at < len(positions)
    old[old] = positions[at[old]] == docs[old]
    partial = partial.copy()
    partial[at[old]] += add[old]
    new = ~old
    return np.insert(positions, at[new], docs[new]), np.insert(partial, at[new], add[new])


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
    return ((keys // len(term_ids)).astype(np.int32), (keys % len(term_ids) + first_position).astype(np.int32),
            tf.astype(np.int32))


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
            counts[:base.terms] = np.diff(np.asarray(base.indptr))
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
        np.save(self.folder / "lengths.npy", np.concatenate(lengths + self._lengths + [np.zeros(0, np.int32)]),
                allow_pickle=False)
        shutil.rmtree(self._scratch)
        write_impacts(self.folder)
        return Postings.load(self.folder)


def _scatter(terms: np.ndarray, docs_in: np.ndarray, tf_in: np.ndarray, fill: np.ndarray,
             docs: np.ndarray, tf: np.ndarray) -> None:
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
