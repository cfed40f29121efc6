"""Time a question over an index that holds a 5 MB one-line document (issue 12, finding 4).

Before the per-paragraph cap, that file was one paragraph of ~116,000 sentences, and every
question that retrieved it embedded all of them (minutes). Now it is cut into numbered parts of
at most `Limits.max_paragraph_chars`, so a question scores a bounded number of sentences (their
vectors stored at ingest).
Builds a fresh index of corpus/ plus the generated file, then asks each question once to warm
up and `--repeat` more times, printing the ingest time and each question's warm latency.

Example usage:

    HF_HUB_OFFLINE=1 PYTHONPATH=$PWD .venv/bin/python bench/giant_paragraph.py --mb 5 --workdir /tmp/giant
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from rag.embed.embedder import Embedder
from rag.engine import Engine
from rag.index.ingest import ingest
from rag.sentences import split_sentences

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
QUESTIONS = [
    "How many cars did China export in 2023?",  # answered by the shipped corpus
    "What happened to freight costs in item 48213?",  # answered by one part of the giant document
    "Did battery prices rise after the tariff?",  # matches hundreds of parts of the giant document
]
SUBJECTS = [
    "The northern plant",
    "Exports of electric cars",
    "The association",
    "Battery prices",
    "A new factory",
    "The ministry",
    "Sales in Mexico",
    "The port of Shanghai",
    "Freight costs",
    "The joint venture",
]
VERBS = ["rose", "fell", "doubled", "stalled", "recovered", "slowed", "surged", "held steady"]
TAILS = [
    "in the third quarter",
    "after the tariff",
    "over the year",
    "in March",
    "for the first time",
    "despite the strike",
    "according to customs data",
    "as demand cooled",
]


def giant_text(megabytes: float, seed: int = 12) -> str:
    rng = random.Random(seed)
    parts, size, n = [], 0, 0
    while size < megabytes * 1_000_000:
        n += 1
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(TAILS)} (item {n})."
        parts.append(s)
        size += len(s) + 1
    return " ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=5.0, help="size of the one-line document")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs of each question after a warm-up")
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the corpus and index here, and reuse them on the next run (the ingest takes minutes)",
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        folder = work / "corpus"
        folder.mkdir(parents=True, exist_ok=True)
        for f in CORPUS.iterdir():
            (folder / f.name).write_bytes(f.read_bytes())
        text = giant_text(args.mb)
        (folder / "giant-one-line.txt").write_text(text + "\n", "utf-8")
        print(f"one-line document: {len(text):,} characters")
        embedder = Embedder()
        _ = embedder.model  # load outside the timings
        started = time.perf_counter()
        report = ingest([folder], work / "index", embedder)  # incremental: a kept index is reused
        print(f"ingest: {time.perf_counter() - started:.1f}s; {report.summary()}")
        engine = Engine.load(work / "index", embedder)
        parts = engine.index.paragraphs("giant-one-line")
        print(f"giant document: {len(parts)} paragraphs, longest {max(len(p.text) for p in parts):,} characters")
        for question in QUESTIONS:
            engine.ask(question)  # warm-up
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                answer = engine.ask(question)
                times.append(time.perf_counter() - started)
            giant = [h.paragraph for h in answer.retrieved if h.paragraph.doc_id == "giant-one-line"]
            sentences = sum(len(split_sentences(h.paragraph.text)) for h in answer.retrieved)
            print(
                f"{question!r}: median {statistics.median(times):.3f}s, max {max(times):.3f}s; "
                f"{len(answer.retrieved)} paragraphs retrieved ({len(giant)} parts of the giant document, "
                f"{sentences} sentences scored); abstained={answer.abstained}"
            )


if __name__ == "__main__":
    main()
