"""Cold start: `rag ask` in a fresh process, with no server, from process start to the printed answer.

    python bench/cold_start.py [--index .rag/index] [--runs 5]

Runs `rag ask --timings QUESTION` `--runs` times per query encoder, each in a new process, and prints
the median of every row of the `--timings` breakdown and of the wall time measured from outside
(process spawn to exit). Two configurations, side by side in one run:

- `onnx`: questions embedded by the index's ONNX export (what `rag ask` does when ingest made one);
- `torch`: `RAG_QUERY_ENCODER=torch`, the torch model, as every `rag ask` did before the export.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How many vehicles did China export in 2023?"
ROW = re.compile(r"^  (.+?)\s{2,}(-?\d+(?:\.\d+)?)$")


def one_run(index: str, encoder: str) -> tuple[dict[str, float], float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_QUERY_ENCODER": encoder}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "ask", "--index", index, "--timings", QUESTION],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    wall = (time.perf_counter() - t0) * 1000
    if done.returncode:
        sys.exit(f"rag ask failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = {m.group(1): float(m.group(2)) for m in map(ROW.match, done.stderr.splitlines()) if m}
    return rows, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=os.environ.get("RAG_INDEX", ".rag/index"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, tuple[list[dict[str, float]], list[float]]] = {}
    for encoder in ("onnx", "torch"):
        runs = [one_run(args.index, encoder) for _ in range(args.runs)]
        results[encoder] = ([r for r, _ in runs], [w for _, w in runs])
    labels = list(
        dict.fromkeys(
            k.replace("(torch)", "(…)").replace("(onnx)", "(…)")
            for rows, _ in results.values()
            for r in rows
            for k in r
        )
    )
    print(f"rag ask in a fresh process, median of {args.runs} runs (ms), index {args.index}, {os.cpu_count()} CPUs")
    print(f"{'':<46} {'onnx':>9} {'torch':>9}")
    for label in labels:
        cells = []
        for encoder in ("onnx", "torch"):
            key = label.replace("(…)", f"({encoder})")
            values = [r[key] for r in results[encoder][0] if key in r]
            cells.append(f"{statistics.median(values):9.1f}" if values else f"{'':>9}")
        print(f"{label:<46} {' '.join(cells)}")
    print(
        f"{'wall, measured outside (spawn to exit)':<46} "
        f"{statistics.median(results['onnx'][1]):9.0f} {statistics.median(results['torch'][1]):9.0f}"
    )


if __name__ == "__main__":
    main()
