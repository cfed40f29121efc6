"""The extractive answerer: grounded by construction, every sentence is a cited sentence of the corpus.

Steps:
1. Split the retrieved paragraphs into sentences; take their vectors as embedded at ingest
   (`rag.embed.sentence_vectors`), so only the question is embedded now (sentences of an index written
   without them are embedded here).
2. Score each sentence with `rag.answer.ranker`: similarity to the question and to its paragraph,
   lexical match in the sentence and in its context, the years and qualifiers the question sets,
   and whether it holds the kind of answer asked for (`rag.answer.question`).
   A sentence whose paragraph (with its heading and its document's own description: title, issuer,
   form, period) does not name every place, company or year the question names
   (`rag.answer.coverage`) loses `UNCOVERED_PENALTY`.
3. Abstain when the evidence is weak (see `Thresholds`, calibrated in evals/abstention.md): among
   others, when no sentence whose paragraph names all of that scores well enough. The answer
   then says so and still lists the closest paragraphs as `retrieved`.
4. Pick up to `max_sentences` sentences, best first: each within `keep_within` of the best
   logit, and not a near-duplicate (cosine >= `redundancy`) of one already picked; then up to
   `extra_paragraphs` more under the same rules, each from a paragraph not cited yet, so an
   answer that spans paragraphs cites them. Cite each sentence with its own paragraph.
5. Lead with the span that answers (a figure, date, name or place) from the best sentence, and
   note where quoted sentences of different documents give different figures (`rag.answer.lead`).

It does not paraphrase, merge sentences, or compute answers (a difference of two figures is
shown as the sentences that state them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rag.answer import AnswerStream, finished_stream
from rag.answer.coverage import covers, question_parts, without_instructions
from rag.answer.lead import disagreements, lead
from rag.answer.measure import asked_measure
from rag.answer.question import AnswerType, Frame, frame, without_attribution, years_in
from rag.answer.ranker import FEATURES, WEIGHTS, Candidate, features, score
from rag.answer.shape import named_document, named_first, with_referents
from rag.answer.table_figure import Cell, describe, find_cell, outranks
from rag.cite.markers import make_citation, render_claims
from rag.documents import Answer, Citation, Hit, Lead, SentenceClaim, Support
from rag.embed.embedder import Embedder
from rag.embed.sentence_vectors import SentenceVectors, vector_texts
from rag.names import Names
from rag.prompts import REFUSAL
from rag.query import Query
from rag.sentences import split_sentences

# Logit margin for joining the answer after the best sentence; fitted with the ranker (evals/ranker.md).
KEEP_WITHIN = 2.5
# Sentences quoted best first, then how many more may join from paragraphs not cited yet; chosen on the fitting
# half of the gold set for evidence cited and key facts (evals/ranker.md).
MAX_SENTENCES = 3
EXTRA_PARAGRAPHS = 3
# A sentence this similar (cosine) to one already quoted is a near-copy and is left out. On the fitting half of the
# gold set 0.85 (the first setting) left out sentences of the paragraph a briefing paraphrases (the commentary's
# own "less than 10% of their foreign sales" against the briefing's "The Caixin commentary argues..."); from 0.88
# up evidence cited is 0.872 against 0.847, key facts 0.85 against 0.84 (evals/ranker.md).
REDUNDANCY = 0.9


@dataclass(frozen=True)
class Signals:
    """How strong the evidence for an answer is: what the abstention rule (`Thresholds.abstains`) reads.

    Stored in `Answer.signals` as a dict of floats (`as_dict`), in this order, for the evals to replay.
    """

    similarity: float  # the best sentence's cosine to the question
    missing_year: bool = False  # the question asks about a year no retrieved paragraph names
    best_score: float = float("inf")  # the best ranker logit
    covered: bool = True  # some sentence's paragraph names all the question names
    covered_score: float = float("inf")  # the best logit among covered sentences (of all, when none is)
    table_row: bool = False  # a figure question, and a row of a covered table names its measure (`table_figure`)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Thresholds:
    """When to abstain; values calibrated in evals/abstention.md.

    - `min_similarity`: the best sentence's cosine to the question must reach this (off-topic questions don't).
    - `confident_similarity`: between `min_similarity` and this, the answer is given with a note that no
      sentence matches the question closely; near-topic questions the documents cannot answer mostly
      land below 0.68 (evals/abstention.md), as do about a quarter of the answerable ones (mostly paraphrases).
    - `min_covered_score`: the best ranker logit among sentences whose paragraph names every place, company
      and year the question names (`rag.answer.coverage`) must reach this; with no such sentence, it abstains.
    """

    min_similarity: float = 0.52
    confident_similarity: float = 0.68
    min_covered_score: float | None = -2.25  # None: no coverage rule (the rule before evals/abstention.md's sweep)
    year_rule: bool = True  # refuse when the question's year is in no retrieved paragraph
    table_rows: bool = True  # a table row naming the measure asked stands in for a similar sentence

    def abstains(self, s: Signals) -> bool:
        """The abstention rule, the one place it is written (the answerer and the calibration sweep call it).

        A question about a year that no retrieved paragraph names ("exports in 2019"), or about a measure
        none of them mentions ("BYD's net profit"), is refused whatever its similarity: the nearest
        sentences are about other years or other figures (evals/ranker.md). So is one where no sentence's
        paragraph names all it names ("South Korea's exports to Russia": one paragraph gives Korea's exports,
        another Russia's imports), or where the best such sentence scores below `min_covered_score`.

        >>> Thresholds().abstains(Signals(0.50)), Thresholds().abstains(Signals(0.58))
        (True, False)
        >>> Thresholds().abstains(Signals(0.80, missing_year=True)), Thresholds().abstains(Signals(0.80, covered=False))
        (True, True)
        >>> Thresholds().abstains(Signals(0.80, covered_score=-3.0))
        True
        """
        if self.year_rule and s.missing_year:
            return True
        if s.similarity < self.min_similarity and not (self.table_rows and s.table_row):
            return True  # a table row is seldom near a question in embedding space ("R&D — Q1 2024: 4,109")
        return self.min_covered_score is not None and (not s.covered or s.covered_score < self.min_covered_score)


LOW_CONFIDENCE = (
    "No sentence in the documents matches this question closely; these are the closest statements. "
    "Check the citations before relying on them."
)


@dataclass(frozen=True)
class Ranking:
    """The candidate sentences of some hits, scored by `rag.answer.ranker` (public so the evals can fit and inspect it)."""

    frame: Frame
    candidates: list[Candidate]
    vectors: np.ndarray  # one per candidate
    similarity: np.ndarray  # cosine to the question
    features: np.ndarray
    scores: np.ndarray  # the ranker's logits, less `UNCOVERED_PENALTY` where `covered` is False
    covered: np.ndarray  # per candidate: its paragraph, heading and title name all the question names


class ExtractiveAnswerer:
    name = "extractive"
    chat_model = None  # follow-ups are rewritten by rules (`rag.query`)

    def __init__(
        self,
        embedder: Embedder,
        titles: dict[str, str],
        max_sentences: int = MAX_SENTENCES,
        thresholds: Thresholds = Thresholds(),
        redundancy: float = REDUNDANCY,
        keep_within: float = KEEP_WITHIN,
        weights: tuple[float, ...] = WEIGHTS,
        sentences: SentenceVectors | None = None,
        extra_paragraphs: int = EXTRA_PARAGRAPHS,
        contexts: dict[str, str] | None = None,
        names: Names | None = None,
    ):
        self.embedder = embedder
        self.sentences = sentences
        self.titles = titles
        # per document: what it says of itself (title, issuer, ticker, form, period, file name), which names the
        # company and year a paragraph of it leaves out (`rag.engine.contexts_of`); the title alone when not given
        self.contexts = contexts if contexts is not None else titles
        self.names = names or Names()  # the forms of a name: countries', and the acronyms the corpus defines
        self.max_sentences = max_sentences
        self.thresholds = thresholds
        self.redundancy = redundancy
        self.keep_within = keep_within  # a sentence joins the answer if its logit is within this of the best
        self.weights = weights
        self.extra_paragraphs = extra_paragraphs  # more sentences, each from a paragraph not cited yet

    def warm(self) -> float:
        return self.embedder.warm()

    def with_embedder(self, embedder: Embedder) -> ExtractiveAnswerer:
        return ExtractiveAnswerer(
            embedder,
            self.titles,
            self.max_sentences,
            self.thresholds,
            self.redundancy,
            self.keep_within,
            self.weights,
            self.sentences,
            self.extra_paragraphs,
            self.contexts,
            self.names,
        )

    def stream(self, query: Query, hits: list[Hit]) -> AnswerStream:
        """The whole answer at once: quoting needs no generation, so there is nothing to stream token by token."""
        answer = self.answer(query, hits)
        return finished_stream(answer, render_claims(answer.claims))

    def rank(self, query: Query, hits: list[Hit]) -> Ranking:
        question = query.standalone
        candidates: list[Candidate] = []
        stored: list[np.ndarray | None] = []  # per candidate: its vector from ingest, or None to embed it now
        embedded: list[str] = []  # per candidate: the text its vector is of (`rag.embed.sentence_vectors.vector_texts`)
        for hit in hits:
            sentences = split_sentences(hit.paragraph.text)
            p = hit.paragraph
            block = self.sentences.of(p.doc_id, p.para, len(sentences)) if self.sentences else None
            # the texts to embed now, only for a paragraph without stored vectors (a table's are rebuilt from its rows)
            texts = sentences if block is not None else vector_texts(p)
            for i, (s, text) in enumerate(zip(sentences, texts)):
                candidates.append(Candidate(hit, i, s, sentences[i - 1] if i else ""))
                stored.append(None if block is None else block[i])
                embedded.append(text)
        q_frame = frame(question)
        if not candidates:
            empty = np.zeros((0, len(FEATURES)))
            return Ranking(
                q_frame,
                [],
                np.zeros((0, self.embedder.dimension)),
                np.zeros(0),
                empty,
                np.zeros(0),
                np.zeros(0, dtype=bool),
            )
        # similarity to the question's subject: "according to the commentary" is where to look, which no sentence says
        encoded = self.embedder.encode_queries(
            [without_attribution(question)] + [t for t, v in zip(embedded, stored) if v is None]
        )
        q_vector, fresh = encoded[0], iter(encoded[1:])
        vectors = np.vstack([v if v is not None else next(fresh) for v in stored])
        sims = vectors @ q_vector
        x = features(q_frame, candidates, sims, self.titles)
        asked = question_parts(query.asked)
        context = {}  # per paragraph: does it, with its heading and title, name all the question names?
        for c in candidates:
            p = c.hit.paragraph
            if (p.doc_id, p.para) not in context:
                context[p.doc_id, p.para] = covers(
                    asked, " ".join((p.text, p.heading, self.contexts.get(p.doc_id, ""))), self.names
                )
        covered = np.array([context[c.hit.paragraph.doc_id, c.hit.paragraph.para] for c in candidates])
        return Ranking(q_frame, candidates, vectors, sims, x, score(x, self.weights, covered), covered)

    def answer(self, query: Query, hits: list[Hit]) -> Answer:
        question = query.standalone
        ranking = self.rank(query, hits)
        if not ranking.candidates:
            return self._abstain(question, hits)
        asked = ranking.frame.years
        # a paragraph with its heading and its document's description: a filing's table names neither the fiscal
        # year nor the company, its cover and file name do
        texts = [
            " ".join((h.paragraph.text, h.paragraph.heading, self.contexts.get(h.paragraph.doc_id, ""))) for h in hits
        ]
        cell = self._cell(query, ranking, hits)
        signals = Signals(
            similarity=float(ranking.similarity.max()),
            missing_year=bool(asked) and not any(asked & years_in(t) for t in texts),
            best_score=float(ranking.scores.max()),
            covered=bool(ranking.covered.any()),
            covered_score=float(
                ranking.scores[ranking.covered].max() if ranking.covered.any() else ranking.scores.max()
            ),
            table_row=cell is not None,
        )
        if self.thresholds.abstains(signals):
            return self._abstain(question, hits, signals)
        chosen, found = self._shape(ranking, question)
        cite = {i: self._cite(ranking, i) for i in chosen}
        claims = tuple(
            SentenceClaim(ranking.candidates[i].text, (cite[i],), Support.SUPPORTED, float(ranking.similarity[i]))
            for i in chosen
        )
        # a lead read from a sentence whose paragraph names all the question names is no weak match
        confident = signals.similarity >= self.thresholds.confident_similarity or (
            found is not None and bool(ranking.covered[found[0]])
        )
        claims, answer_lead = self._table_figure(query, ranking, cell, claims, found[1] if found else None)
        if answer_lead is not None and (found is None or answer_lead is not found[1]):
            confident = True  # a table cell of a covered paragraph, whose row names the measure asked
        notes = () if confident else (LOW_CONFIDENCE,)
        return Answer(
            question=question,
            claims=claims,
            abstained=False,
            retrieved=tuple(hits),
            answerer=self.name,
            signals=signals.as_dict(),
            notes=notes,
            lead=answer_lead,
            disagreements=disagreements(
                ranking.frame,
                question,
                [(ranking.candidates[i].text, cite[i]) for i in chosen],
                lambda a, b: float(ranking.vectors[chosen[a]] @ ranking.vectors[chosen[b]]),
            ),
        )

    def _cite(self, ranking: Ranking, i: int) -> Citation:
        p = ranking.candidates[i].hit.paragraph
        return make_citation(p, self.titles.get(p.doc_id, ""), ranking.candidates[i].text)

    def _shape(self, ranking: Ranking, question: str) -> tuple[list[int], tuple[int, Lead] | None]:
        """The sentences to quote, in order, and the lead with the sentence it comes from (`rag.answer.shape`):
        a document the question names first; the lead's sentence (from those picked, else from the next best
        within `keep_within` of the best) first of all; each sentence that points back after its referent."""
        named = named_document(question, self.contexts)
        chosen = named_first(ranking.candidates, self._select(ranking), named)
        order = [int(i) for i in np.argsort(-ranking.scores, kind="stable")]
        best = ranking.scores[order[0]]
        pool = [i for i in order if i not in chosen and ranking.scores[i] >= best - self.keep_within]
        # the lead is looked for in the quoted sentences, then the next best; a named document's own first
        # (only for a figure of a narrowed kind, "new-energy vehicles", which the quotes may give only of all kinds)
        if not asked_measure(question)[0]:
            pool = []
        search = named_first(ranking.candidates, chosen + pool, named)
        cites = {i: self._cite(ranking, i) for i in search}
        texts = {i: ranking.candidates[i].text for i in cites}
        found = lead(ranking.frame, question, [(texts[i], cites[i]) for i in search], (), self.names)
        if found is None:
            return with_referents(ranking.candidates, chosen), None
        at = next(i for i in cites if cites[i] is found.citation or texts[i] == found.citation.quote)
        chosen = [at] + [i for i in chosen if i != at] if at not in chosen[:1] and at in pool else chosen
        return with_referents(ranking.candidates, chosen), (at, found)

    def _cell(self, query: Query, ranking: Ranking, hits: list[Hit]) -> Cell | None:
        """For a figure question, the cell of a retrieved table, in a paragraph that covers what the question names,
        whose row names the measure asked (`rag.answer.table_figure`)."""
        if ranking.frame.answer_type is not AnswerType.QUANTITY:
            return None
        covered = {
            (c.hit.paragraph.doc_id, c.hit.paragraph.para) for c, ok in zip(ranking.candidates, ranking.covered) if ok
        }
        tables = [h.paragraph for h in hits if (h.paragraph.doc_id, h.paragraph.para) in covered]
        return find_cell(without_instructions(query.asked), ranking.frame.years, tables)

    def _table_figure(
        self, query: Query, ranking: Ranking, cell: Cell | None, claims: tuple[SentenceClaim, ...], prose: Lead | None
    ) -> tuple[tuple[SentenceClaim, ...], Lead | None]:
        """For a figure question, the cell of a retrieved table whose row names the measure asked
        (`rag.answer.table_figure`) leads, and its row is quoted first, unless the prose lead's sentence states
        that measure for the period asked (`outranks`)."""
        if cell is None or (prose is not None and not outranks(cell, prose.citation.quote, query.asked)):
            return claims, prose
        citation = make_citation(cell.paragraph, self.titles.get(cell.paragraph.doc_id, ""), cell.line)
        similarity = max(
            (float(ranking.similarity[i]) for i, c in enumerate(ranking.candidates) if c.text == cell.line), default=0.0
        )
        row = SentenceClaim(cell.line, (citation,), Support.SUPPORTED, similarity)
        rest = tuple(c for c in claims if c.text != cell.line)
        return (row, *rest), Lead(cell.value.strip(), citation, describe(cell))

    def _select(self, ranking: Ranking) -> list[int]:
        """Up to `max_sentences`, best first: each within `keep_within` of the best logit and not a near-copy
        (cosine >= `redundancy`) of one already picked; then up to `extra_paragraphs` more by the same rules,
        each from a paragraph no picked sentence cites."""
        order = np.argsort(-ranking.scores, kind="stable")
        best = ranking.scores[order[0]]
        picked: list[int] = []

        def paragraph(i) -> tuple[str, int]:
            p = ranking.candidates[i].hit.paragraph
            return p.doc_id, p.para

        for limit, new_paragraphs_only in (
            (self.max_sentences, False),
            (self.max_sentences + self.extra_paragraphs, True),
        ):
            for i in order:
                if len(picked) >= limit or ranking.scores[i] < best - self.keep_within:
                    break
                if i in picked or (new_paragraphs_only and paragraph(i) in {paragraph(j) for j in picked}):
                    continue
                if any(float(ranking.vectors[i] @ ranking.vectors[j]) >= self.redundancy for j in picked):
                    continue
                picked.append(int(i))
        return picked

    def _abstain(self, question: str, hits: list[Hit], signals: Signals | None = None) -> Answer:
        return Answer(
            question=question,
            claims=(SentenceClaim(REFUSAL),),
            abstained=True,
            retrieved=tuple(hits),
            answerer=self.name,
            signals=signals.as_dict() if signals else {},
        )
