"""Per-question cost through one shared engine, as the UI's sessions share it, at concurrency 1, 5 and 20.

    python bench/concurrency.py [--index .rag/index] [--rounds 3]

Each round asks the gold questions (evals/gold/*.jsonl) from N threads at once, through one warm
`Engine`. It prints, per concurrency: latency p50 / p95 per question (from submission to answer, so
queueing counts), and CPU seconds per question (process CPU time over the run / questions). Two
configurations, side by side in one run:

- `now`: questions embedded by the index's ONNX encoder, sentence vectors read from the index;
- `before`: questions embedded by the torch model and every retrieved sentence embedded per question
  (what the engine did before sentence vectors were stored at ingest).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.answer.extractive import ExtractiveAnswerer  # noqa: E402
from rag.embed.embedder import Embedder  # noqa: E402
from rag.engine import Engine, titles_of  # noqa: E402


def gold_questions() -> list[str]:
    questions = []
    for path in sorted((ROOT / "evals" / "gold").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"])
    return list(dict.fromkeys(questions))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(engine: Engine, questions: list[str], concurrency: int, rounds: int) -> dict[str, float]:
    latencies: list[float] = []
    asked = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for r in range(rounds):
            batch = [questions[(r * concurrency + i) % len(questions)] for i in range(concurrency)]
            submitted = time.perf_counter()

            def one(question: str, start: float = submitted) -> float:
                engine.ask(question)
                return time.perf_counter() - start

            latencies += list(pool.map(one, batch))
            asked += len(batch)
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": percentile(latencies, 0.95) * 1000,
        "cpu_ms_per_question": (time.process_time() - cpu0) / asked * 1000,
        "wall_s": time.perf_counter() - wall0,
        "questions": asked,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=os.environ.get("RAG_INDEX", ".rag/index"))
    parser.add_argument("--rounds", type=int, default=3, help="batches of N simultaneous questions per concurrency")
    parser.add_argument("--concurrency", default="1,5,20")
    args = parser.parse_args()
    questions = gold_questions()
    now = Engine.load(args.index)
    now.embedder.warm()
    if now.embedder.query_backend != "onnx" or now.index.sentences is None:
        sys.exit(f"{args.index} has no ONNX encoder or no sentence vectors: run `rag ingest` with this version first")
    torch_embedder = Embedder()
    torch_embedder.warm()
    before = Engine.load(args.index, torch_embedder)
    before = before.with_answerer(ExtractiveAnswerer(torch_embedder, titles_of(before.index)))  # no stored sentences
    for engine in (now, before):
        engine.ask(questions[0])  # first-call costs (lazy imports, allocator) outside the figures
    print(
        f"{len(questions)} gold questions, {args.rounds} rounds per concurrency, index {args.index}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'config':<8} {'concurrency':>11} {'p50 ms':>9} {'p95 ms':>9} {'CPU ms/question':>16}")
    for n in (int(c) for c in args.concurrency.split(",")):
        for name, engine in (("now", now), ("before", before)):
            r = run(engine, questions, n, args.rounds)
            print(
                f"{name:<8} {n:>11} {r['p50_ms']:>9.0f} {r['p95_ms']:>9.0f} {r['cpu_ms_per_question']:>16.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
