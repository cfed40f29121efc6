"""Answers on MMLongBench-Doc: real PDFs of many kinds, questions whose evidence is text, tables or layout.

    python -m evals.mmlongbench select /work/data/mmlongbench/samples.json ALL_PDFS DOCS [--max-docs 24] [--max-pages 1500]
    python -m evals.mmlongbench DOCS --samples /work/data/mmlongbench/samples.json --index DIR
                                [--passages 0,1000] [--out evals/out] [--no-langchain]

samples.json and the PDFs come from github:mayubo2333/MMLongBench-Doc (see evals/datasets.md). A question is kept
when every one of its `evidence_sources` is in `SOURCES` (an empty list: the "Not answerable" questions) and its PDF
is in DOCS. `select` hard-links into DOCS the PDFs with the most kept questions (ties: fewer pages, then name) while the
caps allow, then drops those without a text layer (they fail `rag ingest`; 4 of the 24 picked). Reported by `evals.answers`: stated = the answer (each element of a List answer) in the answer's text,
numbers compared as numbers; cited gold / hit@5 by `evidence_pages` (1-based).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from evals.answers import Question, common_arguments, run

SOURCES = frozenset({"Pure-text (Plain-text)", "Table", "Generalized-text (Layout)"})
NOT_ANSWERABLE = "Not answerable"


def _literal(text, default):
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return default


def kept(sample: dict) -> bool:
    """Evidence only from text, tables or layout (none at all for an unanswerable question).

    >>> kept({"evidence_sources": "['Table', 'Pure-text (Plain-text)']"}), kept({"evidence_sources": "['Chart']"})
    (True, False)
    """
    return set(_literal(sample["evidence_sources"], ["?"])) <= SOURCES


def parts_of(sample: dict) -> tuple[tuple[str, ...], ...]:
    """The reference as parts: a List answer's elements, else the answer itself; none when not answerable.

    >>> parts_of({"answer": "['Ruth', 'Ann']", "answer_format": "List"}), parts_of({"answer": "17", "answer_format": "Int"})
    ((('Ruth',), ('Ann',)), (('17',),))
    """
    answer = str(sample["answer"]).strip()
    if answer == NOT_ANSWERABLE:
        return ()
    if sample.get("answer_format") == "List":
        items = _literal(answer, None)
        if isinstance(items, (list, tuple)) and items:
            return tuple((str(x).strip(),) for x in items)
    return ((answer,),)


def questions(samples: Sequence[dict], present: set[str]) -> list[Question]:
    out = []
    for n, s in enumerate(samples):
        if s["doc_id"] not in present or not kept(s):
            continue
        answerable = str(s["answer"]).strip() != NOT_ANSWERABLE
        pages = (
            frozenset((s["doc_id"], int(p)) for p in _literal(s.get("evidence_pages", "[]"), []))
            if answerable
            else frozenset()
        )
        out.append(
            Question(
                f"m{n:04d}",
                s["question"],
                s["doc_id"],
                answerable,
                parts_of(s),
                pages,
                set="mmlongbench",
                extra={
                    "answer": s["answer"],
                    "format": s.get("answer_format"),
                    "sources": s["evidence_sources"],
                    "doc_type": s.get("doc_type"),
                },
            )
        )
    return out


def select(samples: Sequence[dict], pages: dict[str, int], max_docs: int, max_pages: int) -> list[str]:
    """The PDFs (of `pages`: name -> page count) with the most kept questions, while within both caps.

    >>> s = [{"doc_id": "a.pdf", "evidence_sources": "['Table']"}] * 3 + [{"doc_id": "b.pdf", "evidence_sources": "[]"}]
    >>> select(s, {"a.pdf": 90, "b.pdf": 20, "c.pdf": 5}, 5, 110), select(s, {"a.pdf": 90, "b.pdf": 20}, 5, 100)
    (['a.pdf', 'b.pdf'], ['a.pdf'])
    """
    counts = Counter(s["doc_id"] for s in samples if kept(s) and s["doc_id"] in pages)
    chosen, total = [], 0
    for name in sorted(counts, key=lambda d: (-counts[d], pages[d], d)):
        if len(chosen) < max_docs and total + pages[name] <= max_pages:
            chosen.append(name)
            total += pages[name]
    return chosen


def has_text(path: Path) -> bool:
    """Whether pypdf finds any text on any page (slides exported as images have none)."""
    from pypdf import PdfReader

    return any((page.extract_text() or "").strip() for page in PdfReader(path).pages)


def _select_main(argv: Sequence[str]) -> None:
    from pypdf import PdfReader

    parser = argparse.ArgumentParser(prog="python -m evals.mmlongbench select")
    parser.add_argument("samples", type=Path)
    parser.add_argument("pdfs", type=Path, help="the PDFs the repository really holds")
    parser.add_argument("docs", type=Path, help="where to link the chosen ones")
    parser.add_argument("--max-docs", type=int, default=24)
    parser.add_argument("--max-pages", type=int, default=1500)
    args = parser.parse_args(argv)
    samples = json.loads(args.samples.read_text(encoding="utf-8"))
    pages = {p.name: len(PdfReader(p).pages) for p in sorted(args.pdfs.glob("*.pdf"))}
    picked = select(samples, pages, args.max_docs, args.max_pages)
    # A PDF with no text layer (slides saved as images) fails `rag ingest` ("run OCR first"): dropped after the
    # pick, without refilling, so that the pick itself does not depend on a PDF library's text extraction.
    chosen = [name for name in picked if has_text(args.pdfs / name)]
    for name in sorted(set(picked) - set(chosen)):
        print(f"dropped (no text layer): {name}")
    for stale in args.docs.glob("*.pdf") if args.docs.exists() else ():
        if stale.name not in chosen:
            stale.unlink()
    args.docs.mkdir(parents=True, exist_ok=True)
    for name in chosen:
        # A hard link (or a copy across file systems), not a symlink: `rag ingest` refuses a symlink that leads out
        # of the folder being ingested.
        link = args.docs / name
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            try:
                os.link(args.pdfs / name, link)
            except OSError:
                shutil.copyfile(args.pdfs / name, link)
    qs = questions(samples, set(chosen))
    print(
        f"{len(chosen)} PDFs, {sum(pages[c] for c in chosen)} pages, {sum(q.answerable for q in qs)} answerable and "
        f"{sum(not q.answerable for q in qs)} unanswerable questions -> {args.docs}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["select"]:
        _select_main(argv[1:])
        return
    parser = argparse.ArgumentParser(description="Answer-level evaluation on MMLongBench-Doc")
    parser.add_argument("docs", type=Path, help="the PDFs to ask about (e.g. what `select` linked)")
    parser.add_argument("--samples", type=Path, required=True, help="MMLongBench-Doc's data/samples.json")
    common_arguments(parser)
    args = parser.parse_args(argv)
    samples = json.loads(args.samples.read_text(encoding="utf-8"))
    qs = questions(samples, {p.name for p in args.docs.glob("*.pdf")})
    command = "python -m evals.mmlongbench " + " ".join(argv)
    run(
        args.name or "answers-mmlongbench",
        f"Answers on MMLongBench-Doc (text, table, layout): {len(qs)} questions",
        args.docs,
        args.index,
        qs,
        args.passages,
        args.out,
        args.langchain,
        command,
        notes="stated: the reference answer (each element of a List) in the answer's text, numbers compared as "
        "numbers; cited gold / hit@5 on an evidence page.",
    )


if __name__ == "__main__":
    main()
