"""Questions through a warm `rag serve`: HTTP latency, and the wall time of `rag ask --server` against a cold `rag ask`.

Run: .venv/bin/python bench/serve_latency.py INDEX_DIR [--questions 50] [--cli-runs 10] [--cold-runs 3]
(e.g. INDEX_DIR = .rag/index after `make ingest`; or --server URL to measure a server already running)

What it does:
1. starts `rag serve --index INDEX_DIR` on a free port of 127.0.0.1 (extractive answers, no tokens
   file) and times it until /health answers; one question warms it;
2. asks --questions questions one after another over HTTP (POST /ask, the gold questions below in
   turn) and prints p50 / p95 / max of the round trip, and of the server's own `timings_ms.total`;
3. runs `rag ask --server URL "question"` --cli-runs times, each a new Python process, and prints
   p50 / p95 of their wall times (start to exit, as `time rag ask ...` shows), and of that time less
   the answer's own `timings_ms.total` (what the process and HTTP cost);
4. runs `rag ask "question"` with no server --cold-runs times (each loads the model and index) for
   comparison, and stops the server.

Figures are wall clock on this machine, whatever else it is running. Not handled: concurrent
questions (bench/ has other scripts for load), or LLM answerers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.questions import QUESTIONS
from tests.browser import free_port, stop_server, wait_healthy  # noqa: E402

RAG = [sys.executable, "-m", "app.cli"]  # this checkout's `rag`, whichever is installed
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile.

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.95)
    (2.0, 4.0)
    """
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered) + 0.5) - 1))]


def line(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (
        f"{name:<44} n={len(ms):<3} p50 {percentile(ms, 0.5):8.1f} ms   p95 {percentile(ms, 0.95):8.1f} ms   "
        f"max {max(ms):8.1f} ms"
    )


def post_ask(url: str, question: str) -> dict:
    request = urllib.request.Request(
        f"{url}/ask",
        data=json.dumps({"question": question}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def timed_run(args: list[str]) -> tuple[float, float]:
    """(wall seconds of the process, seconds the answer itself took: its `timings_ms.total`)."""
    t0 = time.perf_counter()
    done = subprocess.run([*args, "--json"], capture_output=True, text=True, env=ENV, timeout=300, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds, json.loads(done.stdout)["timings_ms"]["total"] / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index_dir", type=Path)
    parser.add_argument("--server", help="measure this running server instead of starting one")
    parser.add_argument("--questions", type=int, default=50, help="sequential questions over HTTP")
    parser.add_argument("--cli-runs", type=int, default=10, help="`rag ask --server` processes")
    parser.add_argument("--cold-runs", type=int, default=3, help="`rag ask` processes with no server (0: skip)")
    args = parser.parse_args()

    proc = None
    url = args.server
    if url is None:
        url = f"http://127.0.0.1:{free_port()}"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [*RAG, "serve", "--index", str(args.index_dir), "--port", url.rsplit(":", 1)[1]],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        if proc:
            wait_healthy(url, proc, timeout=300, health="/health", name="rag serve")
            print(f"rag serve up (model and index loaded) in {time.perf_counter() - t0:.1f} s")
        post_ask(url, QUESTIONS[0])  # warm

        http_s, server_ms = [], []
        for n in range(args.questions):
            t0 = time.perf_counter()
            answer = post_ask(url, QUESTIONS[n % len(QUESTIONS)])
            http_s.append(time.perf_counter() - t0)
            server_ms.append(answer["timings_ms"]["total"] / 1000)
        print(line("POST /ask, sequential, round trip", http_s))
        print(line("POST /ask, the server's timings_ms.total", server_ms))

        runs = [timed_run([*RAG, "ask", "--server", url, QUESTIONS[n % len(QUESTIONS)]]) for n in range(args.cli_runs)]
        cli_s = [wall for wall, _ in runs]
        if runs:
            print(line("rag ask --server URL, new process, wall", cli_s))
            print(line("  of which not the answer (process, HTTP)", [wall - answer for wall, answer in runs]))
        runs = [
            timed_run([*RAG, "ask", "--index", str(args.index_dir), QUESTIONS[n % len(QUESTIONS)]])
            for n in range(args.cold_runs)
        ]
        cold_s = [wall for wall, _ in runs]
        if runs:
            print(line("rag ask, no server, new process, wall", cold_s))
            print(line("  of which not the answer (imports, loading)", [wall - answer for wall, answer in runs]))
        if cli_s and cold_s:
            print(
                f"rag ask --server is {statistics.median(cold_s) / statistics.median(cli_s):.0f}x faster "
                f"than a cold rag ask (medians)"
            )
    finally:
        if proc:
            stop_server(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
