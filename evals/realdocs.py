"""Retrieval on real filings: PDFs in, a page-level gold set (evals/sec10q/gold.jsonl), hit rates out.

Steps:
1. `load_gold`: one `GoldItem` per JSON line (format in evals/sec10q/README.md); `check_gold` verifies
   that every evidence string is printed on every gold page (pypdf's text, `normalize`d).
2. `ingest_folder`: the folder into an index with `rag.index.ingest.ingest`, timed, the embedding part apart.
3. Retrieve the top `DEPTH` for each question, as `Retrieved` records (doc_id, page, text), so that
   any system (ours, or the LangChain recipe in bench/realdocs.py) is scored by the same functions.
4. Score per question: document hit@5, page hit@5, paragraph hit@5, MRR@10 by page; average them.
5. `report`: a Markdown table on stdout, realdocs.md and realdocs.json, and the misses.

A paragraph's page is the page it starts on, so a paragraph that runs onto a gold page from the page
before counts as a page miss: page hit@5 is a little strict for long paragraphs, never lenient.

Not handled: answer quality (retrieval only), questions whose answer spans documents (the gold set
keeps to single-document questions), OCR.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evals import metrics as m
from rag.errors import RagError

GOLD = Path("evals/sec10q/gold.jsonl")
K = 5  # hit rates look at the top 5, what the answerer sees
DEPTH = 10  # MRR@10 needs ten
FORMAT = "paracite-realdocs v1"
# pypdf 7 refuses arrays of more than 100,000 elements ("Reached maximum array element count"),
# and two of the twenty 10-Q PDFs (2023 Q1 and Q2 MSFT) hold bigger ones. Both systems read the
# PDFs with this limit raised, so neither loses documents to it (see evals/sec10q/README.md).
PDF_ARRAY_LIMIT = 10_000_000
_FIELDS = ("id", "question", "doc_ids", "files", "pages", "evidence", "answer")


class RealdocsError(RagError):
    """The gold file or the folder is not usable."""


@dataclass(frozen=True)
class PageRef:
    doc_id: str
    page: int  # 1-based physical page, as pypdf counts them


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    doc_ids: tuple[str, ...]
    files: tuple[str, ...]
    pages: tuple[PageRef, ...]
    evidence: tuple[str, ...]
    answer: str
    question_type: str = ""
    source_chunk_type: str = ""


@dataclass(frozen=True)
class Retrieved:
    """One retrieved passage, whoever retrieved it."""

    doc_id: str
    page: int | None  # 1-based; the first page of a paragraph that spans two
    text: str
    label: str = ""  # how the system names it, for the misses file


@dataclass(frozen=True)
class IngestTiming:
    seconds: float
    parse_seconds: float | None = None  # reading and splitting (everything that is not embedding)
    embed_seconds: float | None = None
    sentence_seconds: float | None = (
        None  # the part of embed_seconds spent on sentence vectors (rag.embed.sentence_vectors)
    )
    documents: int = 0
    passages: int = 0  # what was embedded: our chunks (one paragraph or a window of one), LangChain's chunks
    fresh: bool = True  # False: the index was already up to date, nothing was timed


@dataclass
class RealdocsRun:
    system: str
    rows: list[dict] = field(default_factory=list)  # one per question: id and the four scores
    retrieved: dict[str, list[Retrieved]] = field(default_factory=dict)
    ingest: IngestTiming | None = None
    query_seconds: float = 0.0

    @property
    def summary(self) -> dict[str, float]:
        return summarize(self.rows)


# ---------------------------------------------------------------- gold


def load_gold(path: str | Path = GOLD) -> list[GoldItem]:
    path = Path(path)
    if not path.exists():
        raise RealdocsError(f"no gold file at {path}; pass --gold or see evals/sec10q/README.md")
    items: list[GoldItem] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise RealdocsError(f"{path}:{n} is not JSON ({e.msg})") from e
        missing = [f for f in _FIELDS if not raw.get(f)]
        if missing:
            raise RealdocsError(f"{path}:{n} ({raw.get('id', '?')}) lacks {', '.join(missing)}")
        pages = tuple(PageRef(p["doc_id"], int(p["page"])) for p in raw["pages"])
        if any(p.page < 1 for p in pages):
            raise RealdocsError(f"{path}:{n} ({raw['id']}): pages are 1-based")
        items.append(
            GoldItem(
                raw["id"],
                raw["question"],
                tuple(raw["doc_ids"]),
                tuple(raw["files"]),
                pages,
                tuple(raw["evidence"]),
                raw["answer"],
                raw.get("question_type", ""),
                raw.get("source_chunk_type", ""),
            )
        )
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        raise RealdocsError(f"{path}: duplicate ids {sorted({i for i in ids if ids.count(i) > 1})}")
    return items


def normalize(text: str) -> str:
    """Text as compared with evidence: NFKC, lower case, no commas or dollar signs, one space.

    A figure is printed "$82,959 million" in prose and "82,959" in a table; "12.5 %" in a table.

    >>> normalize("Total net sales  $ 82,959"), normalize("Effective tax rate 12.5 %")
    ('total net sales 82959', 'effective tax rate 12.5%')
    """
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'").replace("\u2014", "-").lower()
    text = re.sub(r"[$,]", "", text)
    text = re.sub(r"\s+", " ", text)
    return re.sub(r" %", "%", text).strip()


def _loose(text: str) -> str:
    """`normalize`, and table punctuation dropped: our loader writes a table row as "Gaming: 2,856; ..."

    >>> _loose("Gaming: 2,856; Professional Visualization: 416.")
    'gaming 2856 professional visualization 416.'
    """
    return re.sub(r"\s+", " ", re.sub(r"[:;|]", " ", normalize(text))).strip()


@contextlib.contextmanager
def pdf_limits() -> Iterator[None]:
    """pypdf with `PDF_ARRAY_LIMIT`, for this thread; a no-op on a pypdf without configurable limits."""
    try:
        from pypdf import apply_configuration
    except ImportError:
        yield
        return
    with apply_configuration(array_maximum_element_count=PDF_ARRAY_LIMIT):
        yield


def page_texts(folder: str | Path, files: Sequence[str] | None = None) -> dict[str, list[str]]:
    """pypdf's plain text of every page, by doc_id (the slug of the file name)."""
    from pypdf import PdfReader

    from rag.load import slugify

    folder = Path(folder)
    paths = [folder / f for f in files] if files else sorted(folder.glob("*.pdf"))
    texts: dict[str, list[str]] = {}
    with pdf_limits():
        for path in paths:
            if not path.exists():
                raise RealdocsError(f"{path} is missing; the gold set names it")
            texts[slugify(path.name)] = [page.extract_text() or "" for page in PdfReader(path).pages]
    return texts


def check_gold(items: Sequence[GoldItem], texts: dict[str, list[str]]) -> list[str]:
    """Problems, one line each: a gold page that does not exist, or lacks one of the evidence strings."""
    problems: list[str] = []
    for item in items:
        for ref in item.pages:
            pages = texts.get(ref.doc_id)
            if pages is None:
                problems.append(f"{item.id}: no document {ref.doc_id}")
                continue
            if ref.page > len(pages):
                problems.append(f"{item.id}: {ref.doc_id} has {len(pages)} pages, not {ref.page}")
                continue
            page = normalize(pages[ref.page - 1])
            for evidence in item.evidence:
                if normalize(evidence) not in page:
                    problems.append(f"{item.id}: {evidence!r} not on {ref.doc_id} p. {ref.page}")
    return problems


# ---------------------------------------------------------------- scoring


def doc_hit(item: GoldItem, retrieved: Sequence[Retrieved], k: int = K) -> float:
    """1.0 when one of the first k comes from a gold document.

    >>> g = GoldItem("s1", "q", ("a",), ("a.pdf",), (PageRef("a", 3),), ("42",), "42")
    >>> doc_hit(g, [Retrieved("b", 3, ""), Retrieved("a", 9, "")], k=1), doc_hit(g, [Retrieved("b", 3, ""), Retrieved("a", 9, "")])
    (0.0, 1.0)
    """
    return m.hit_at_k([r.doc_id for r in retrieved], set(item.doc_ids), k)


def page_hit(item: GoldItem, retrieved: Sequence[Retrieved], k: int = K) -> float:
    """1.0 when one of the first k starts on a gold page of a gold document.

    >>> g = GoldItem("s1", "q", ("a",), ("a.pdf",), (PageRef("a", 3),), ("42",), "42")
    >>> page_hit(g, [Retrieved("b", 3, ""), Retrieved("a", 4, "")]), page_hit(g, [Retrieved("a", 3, "")])
    (0.0, 1.0)
    """
    return m.hit_at_k([(r.doc_id, r.page) for r in retrieved], {(p.doc_id, p.page) for p in item.pages}, k)


def paragraph_hit(item: GoldItem, retrieved: Sequence[Retrieved], k: int = K) -> float:
    """1.0 when one of the first k, from a gold document, contains an evidence string (figures compared loosely).

    >>> g = GoldItem("s1", "q", ("a",), ("a.pdf",), (PageRef("a", 3),), ("Gaming 2,856",), "x")
    >>> paragraph_hit(g, [Retrieved("a", 7, "Revenue: Gaming: 2856; Automotive: 261.")])
    1.0
    >>> paragraph_hit(g, [Retrieved("b", 3, "Gaming 2,856")])
    0.0
    """
    wanted = [_loose(e) for e in item.evidence]
    if not wanted:
        return m.NAN
    for r in retrieved[:k]:
        if r.doc_id in item.doc_ids:
            text = _loose(r.text)
            if any(w in text for w in wanted):
                return 1.0
    return 0.0


def page_mrr(item: GoldItem, retrieved: Sequence[Retrieved], k: int = DEPTH) -> float:
    """Reciprocal rank of the first passage on a gold page, within the first k.

    >>> g = GoldItem("s1", "q", ("a",), ("a.pdf",), (PageRef("a", 3),), ("42",), "42")
    >>> page_mrr(g, [Retrieved("a", 1, ""), Retrieved("a", 2, ""), Retrieved("a", 3, "")])
    0.3333333333333333
    """
    return m.mrr_at_k([(r.doc_id, r.page) for r in retrieved], {(p.doc_id, p.page) for p in item.pages}, k)


METRICS: dict[str, Callable[[GoldItem, Sequence[Retrieved]], float]] = {
    "doc_hit@5": doc_hit,
    "page_hit@5": page_hit,
    "para_hit@5": paragraph_hit,
    "mrr@10": page_mrr,
}


def score(item: GoldItem, retrieved: Sequence[Retrieved]) -> dict:
    return {"id": item.id, **{name: fn(item, retrieved) for name, fn in METRICS.items()}}


def summarize(rows: Sequence[dict]) -> dict[str, float]:
    """Means over questions (NaN skipped), and how many questions.

    >>> summarize([{"id": "a", "doc_hit@5": 1.0, "page_hit@5": 0.0, "para_hit@5": 0.0, "mrr@10": 0.5},
    ...            {"id": "b", "doc_hit@5": 0.0, "page_hit@5": 0.0, "para_hit@5": 1.0, "mrr@10": 0.0}])["doc_hit@5"]
    0.5
    """
    return {"questions": len(rows), **{name: m.mean([r[name] for r in rows]) for name in METRICS}}


def run_questions(
    system: str, items: Sequence[GoldItem], search: Callable[[str], list[Retrieved]], ingest: IngestTiming | None = None
) -> RealdocsRun:
    """Ask every question through `search` (top `DEPTH`) and score it."""
    run = RealdocsRun(system, ingest=ingest)
    started = time.perf_counter()
    for item in items:
        found = search(item.question)[:DEPTH]
        run.retrieved[item.id] = found
        run.rows.append(score(item, found))
    run.query_seconds = time.perf_counter() - started
    return run


# ---------------------------------------------------------------- ours


class TimedEmbedder:
    """Passes everything to `inner`, and adds up the seconds spent in `encode_documents`."""

    def __init__(self, inner):
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.seconds = 0.0
        self.sentence_seconds = 0.0  # calls made with desc="Sentences" (rag.index.ingest's sentence-vector pass)

    def encode_documents(self, texts, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.inner.encode_documents(texts, *args, **kwargs)
        finally:
            spent = time.perf_counter() - started
            self.seconds += spent
            if kwargs.get("desc") == "Sentences":
                self.sentence_seconds += spent

    def __getattr__(self, name):
        return getattr(self.inner, name)


def ingest_folder(
    folder: str | Path,
    index_dir: str | Path,
    embedder,
    rebuild: bool = False,
    show_progress: bool = False,
    passage_chars: int | None = None,
) -> IngestTiming:
    """Bring the index in line with the folder; time it (parse = all but embedding). `fresh` is False when
    nothing had changed, so no ingest was timed. Filings are ingested with passages on
    (`rag ingest --passages 1000`), the setting for reports of tables and short rows."""
    from rag.index.ingest import ingest
    from rag.passages import DEFAULT_MAX_CHARS

    passage_chars = DEFAULT_MAX_CHARS if passage_chars is None else passage_chars

    timed = TimedEmbedder(embedder)
    with pdf_limits():
        report = ingest(
            [Path(folder)], index_dir, timed, rebuild=rebuild, show_progress=show_progress, passage_chars=passage_chars
        )
    if report.failed:
        names = "; ".join(str(e) for e in report.failed)
        raise RealdocsError(f"ingest failed for {len(report.failed)} file(s): {names}")
    fresh = report.changed or rebuild
    return IngestTiming(
        report.seconds,
        report.seconds - timed.seconds if fresh else None,
        timed.seconds if fresh else None,
        timed.sentence_seconds if fresh else None,
        len(report.added) + len(report.updated) + len(report.unchanged),
        report.passages_embedded,
        fresh,
    )


def paracite_search(engine, depth: int = DEPTH) -> Callable[[str], list[Retrieved]]:
    def search(question: str) -> list[Retrieved]:
        return [
            Retrieved(h.paragraph.doc_id, h.paragraph.page, h.paragraph.text, h.paragraph.label)
            for h in engine.retriever.search(question, top_k=depth)
        ]

    return search


def run_realdocs(
    folder: str | Path,
    index_dir: str | Path,
    embedder,
    gold: str | Path = GOLD,
    rebuild: bool = False,
    show_progress: bool = False,
) -> tuple[list[GoldItem], RealdocsRun]:
    from rag.engine import Engine

    items = load_gold(gold)
    timing = ingest_folder(folder, index_dir, embedder, rebuild=rebuild, show_progress=show_progress)
    engine = Engine.load(index_dir, embedder)
    known = {d.doc_id for d in engine.index.documents}
    absent = sorted({d for i in items for d in i.doc_ids} - known)
    if absent:
        raise RealdocsError(
            f"the index lacks {len(absent)} gold document(s): {', '.join(absent[:5])}; is {folder} the right folder?"
        )
    return items, run_questions("paracite", items, paracite_search(engine), timing)


# ---------------------------------------------------------------- report


def _seconds(t: IngestTiming | None) -> str:
    if t is None or not t.fresh:
        return "– (index up to date)"
    sentences = f", {t.sentence_seconds:.1f} of it sentences" if t.sentence_seconds else ""
    split = (
        f" ({t.parse_seconds:.1f} parse + {t.embed_seconds:.1f} embed{sentences})"
        if t.embed_seconds is not None
        else ""
    )
    return f"{t.seconds:.1f}{split}"


def table(runs: Sequence[RealdocsRun]) -> str:
    lines = [
        "| system | questions | doc hit@5 | page hit@5 | para hit@5 | MRR@10 (page) | passages embedded | ingest s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        s = run.summary
        passages = run.ingest.passages if run.ingest and run.ingest.fresh else "–"
        lines.append(
            f"| {run.system} | {s['questions']} | {s['doc_hit@5']:.3f} | {s['page_hit@5']:.3f} | "
            f"{s['para_hit@5']:.3f} | {s['mrr@10']:.3f} | {passages} | {_seconds(run.ingest)} |"
        )
    return "\n".join(lines)


def misses(run: RealdocsRun, items: Sequence[GoldItem], k: int = K) -> str:
    """The questions whose top k has no gold page, with the gold pages and what came back."""
    by_id = {i.id: i for i in items}
    out = [f"# {run.system}: page misses at {k}", ""]
    for row in run.rows:
        if row["page_hit@5"] == 1.0:
            continue
        item = by_id[row["id"]]
        gold = ", ".join(f"{p.doc_id} p. {p.page}" for p in item.pages)
        out += [
            f"## {item.id} {item.question}",
            f"gold: {gold}; evidence {list(item.evidence)}",
            f"doc hit {row['doc_hit@5']:.0f}, para hit {row['para_hit@5']:.0f}",
        ]
        for n, r in enumerate(run.retrieved[item.id][:k], start=1):
            snippet = re.sub(r"\s+", " ", r.text)[:110]
            out.append(f"{n}. {r.doc_id} p. {r.page} {r.label}: {snippet}")
        out.append("")
    return "\n".join(out) + "\n"


def report(
    runs: Sequence[RealdocsRun], items: Sequence[GoldItem], out: str | Path, name: str = "realdocs", notes: str = ""
) -> str:
    """Write <name>.md, <name>.json and <name>-misses.md under `out`; return the table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = table(runs)
    (out / f"{name}.md").write_text(
        f"# Retrieval on real documents: {len(items)} questions\n\n{text}\n\n{notes}\n", encoding="utf-8"
    )
    payload = {
        "format": FORMAT,
        "questions": len(items),
        "k": K,
        "depth": DEPTH,
        "runs": [
            {
                "system": r.system,
                "summary": r.summary,
                "query_seconds": r.query_seconds,
                "ingest": asdict(r.ingest) if r.ingest else None,
                "rows": r.rows,
            }
            for r in runs
        ],
    }
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    (out / f"{name}-misses.md").write_text("\n".join(misses(r, items) for r in runs), encoding="utf-8")
    return text


def main() -> None:
    """`python -m evals.realdocs FOLDER [GOLD]`: check that every evidence string is on its gold pages."""
    import sys

    folder = sys.argv[1]
    items = load_gold(sys.argv[2] if len(sys.argv) > 2 else GOLD)
    files = sorted({f for i in items for f in i.files})
    problems = check_gold(items, page_texts(folder, files))
    for p in problems:
        print(p)
    pages = sum(len(i.pages) for i in items)
    print(f"{len(items)} questions, {pages} gold pages, {len(problems)} problems", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
