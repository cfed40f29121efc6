"""Ingest throughput here, then on a local Ray cluster of 1 and of 2 workers: files/s, pages/s, embeddings/s.

    python bench/ray_ingest.py [--docs /work/data/sec-10-q/v1/docs] [--files 20] [--workers 1 2]

Each run ingests the same files into a fresh index (`rag.index.ingest.ingest`, as `rag ingest` and
`rag ingest --ray` do) and times its two distributed phases from the driver: parsing (the
`parse` hook: files read, shipped, parsed, replies back) and embedding (every `encode_documents`
call: chunks, then sentences; on Ray this includes each encoder loading the model once). The
rest (planning, chunking, writing the generation) is in the total. The ONNX query encoder is
exported once beforehand and copied into each index, so no run pays for it.

- `local`: `rag ingest` as it is: parse workers, one per core, and torch on every core;
- `ray N`: `ray.init(num_cpus=N)` on this machine, then `rag ingest --ray`: N parse tasks or
  N encoder actors (one CPU and one torch thread each) at a time.

Input: the SEC 10-Q filings of evals/sec10q when `--docs` exists, else corpus/ and generated
report PDFs (tests/pdfs.py). Per-core rates for sizing a cluster are those of `ray 1`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.embed.embedder import Embedder  # noqa: E402
from rag.embed.onnx_encoder import encoder_folder  # noqa: E402
from rag.index.ingest import ingest  # noqa: E402
from rag.index.reader import Index  # noqa: E402
from rag.load.worker import parse_files  # noqa: E402

SEC_DOCS = Path("/work/data/sec-10-q/v1/docs")


class Clock:
    """Seconds spent in the parse hook and in embedding, wrapped around whatever does them."""

    def __init__(self):
        self.parse = self.embed = 0.0

    def timed_parse(self, parse):
        def run(jobs, limits, on_done=None):
            t0 = time.perf_counter()
            try:
                return parse(jobs, limits, on_done=on_done)
            finally:
                self.parse += time.perf_counter() - t0

        return run

    def timed_embedder(self, embedder: Embedder) -> Embedder:
        inner = embedder.encode_documents

        def encode_documents(texts, progress=False, desc="Embedding"):
            t0 = time.perf_counter()
            try:
                return inner(texts, progress=progress, desc=desc)
            finally:
                self.embed += time.perf_counter() - t0

        embedder.encode_documents = encode_documents  # this run's embedder only
        return embedder


def inputs(docs: Path, files: int, scratch: Path) -> list[Path]:
    if docs.is_dir():
        return sorted(p for p in docs.iterdir() if p.suffix.lower() == ".pdf")[:files]
    from tests.pdfs import report_pdf

    made = [report_pdf(scratch / f"report-{i:02d}.pdf") for i in range(max(0, files - 6))]
    return (sorted(p for p in (ROOT / "corpus").iterdir() if p.is_file()) + made)[:files]


def one_run(label: str, paths: list[Path], index_dir: Path, encoder_template: Path, embedder: Embedder, parse) -> dict:
    shutil.copytree(encoder_template, encoder_folder(index_dir))
    clock = Clock()
    t0 = time.perf_counter()
    report = ingest(paths, index_dir, clock.timed_embedder(embedder), parse=clock.timed_parse(parse))
    total = time.perf_counter() - t0
    if report.failed:
        print(f"{label}: {len(report.failed)} files failed: {report.failed[0]}", file=sys.stderr)
    index = Index.open(index_dir, embedder.name, embedder.dimension)
    pages = sum(d.pages or 0 for d in index.documents)
    embedded = report.passages_embedded + report.sentences_embedded
    return {
        "label": label,
        "files": len(index.documents),
        "pages": pages,
        "embeddings": embedded,
        "parse_s": clock.parse,
        "embed_s": clock.embed,
        "total_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=SEC_DOCS)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-local", action="store_true", help="Only the Ray runs.")
    args = parser.parse_args()
    import ray

    from app.distributed import RayCluster

    scratch = Path(tempfile.mkdtemp(prefix="ray-ingest-bench-"))
    try:
        paths = inputs(args.docs, args.files, scratch)
        embedder = Embedder()
        template = scratch / "template"
        embedder.export_query_encoder(template)
        runs = []
        if not args.no_local:
            runs.append(one_run("local", paths, scratch / "local", encoder_folder(template), embedder, parse_files))
            print(runs[-1], file=sys.stderr)
        for n in args.workers:
            ray.init(num_cpus=n, include_dashboard=False, logging_level="warning")
            try:
                with RayCluster.connect("auto") as cluster:
                    runs.append(
                        one_run(
                            f"ray {n}",
                            paths,
                            scratch / f"ray-{n}",
                            encoder_folder(template),
                            cluster.embedder(),
                            cluster.parse_files,
                        )
                    )
            finally:
                ray.shutdown()
            print(runs[-1], file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    first = runs[0]
    print(
        f"{first['files']} files, {first['pages']} pages, {first['embeddings']} embeddings (chunks and sentences) "
        f"from {args.docs if args.docs.is_dir() else 'corpus/ and generated PDFs'}; {os.cpu_count()} CPUs here"
    )
    print(
        f"{'run':<8} {'parse s':>8} {'files/s':>8} {'pages/s':>8} {'embed s':>8} {'emb/s':>8} {'total s':>8} "
        f"{'files/s':>8}  (last: whole ingest)"
    )
    for r in runs:
        print(
            f"{r['label']:<8} {r['parse_s']:8.1f} {r['files'] / r['parse_s']:8.2f} {r['pages'] / r['parse_s']:8.1f} "
            f"{r['embed_s']:8.1f} {r['embeddings'] / r['embed_s']:8.1f} {r['total_s']:8.1f} "
            f"{r['files'] / r['total_s']:8.3f}"
        )


if __name__ == "__main__":
    main()
