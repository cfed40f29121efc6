"""`rag ingest --ray`: on a real local Ray cluster (2 CPUs) with the real model, the index is the one a local ingest
builds from the same files, bad files are reported as a local ingest reports them, and workers killed mid-ingest
have their files parsed and embedded again, none lost and none twice."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
from click.testing import CliRunner

from app.cli import cli
from app.distributed import Encoder, RayCluster, parse_batch
from rag.index.ingest import ingest
from rag.embed.onnx_encoder import encoder_folder
from rag.index.reader import Index
from tests.conftest import CORPUS, ROOT

# Vectors agree to this cosine: documents may be encoded in bfloat16 (rag.embed.embedder.document_precision), whose
# rounding depends on which texts share a batch, and Ray's blocks batch them differently from a local ingest.
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, logging_level="warning")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> Path:
    """Two files that fail: a corrupt PDF and an empty one."""
    folder = tmp_path_factory.mktemp("ray-bad") / "bad"
    folder.mkdir()
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nthis is not a PDF body\n")
    (folder / "empty.txt").write_text("")
    return folder


def fresh_index(folder: Path, corpus_index: Path) -> Path:
    """An empty index folder holding the query encoder already (exporting it again is not what is tested here)."""
    shutil.copytree(encoder_folder(corpus_index), encoder_folder(folder))
    return folder


@pytest.fixture(scope="module")
def local(bad_files, corpus_index, tmp_path_factory, embedder):
    """What a local ingest of the shipped corpus and the bad files gives: the session's corpus index, and the
    failures a local ingest reports for the bad files."""
    failed = ingest([bad_files], fresh_index(tmp_path_factory.mktemp("local"), corpus_index), embedder)
    return failed, Index.open(corpus_index, embedder.name, embedder.dimension)


def failures(report) -> list[tuple[str, str, str]]:
    return sorted((type(e).__name__, e.path, e.reason) for e in report.failed)


def assert_same_index(a: Index, b: Index) -> None:
    assert a.content.documents == b.content.documents
    assert a.content.paragraphs == b.content.paragraphs
    assert a.content.passages == b.content.passages
    assert a.content.vectors.shape == b.content.vectors.shape
    assert np.sum(a.content.vectors * b.content.vectors, axis=1).min() >= MIN_COSINE
    sa, sb = a.sentences, b.sentences
    assert np.array_equal(sa.offsets, sb.offsets)
    assert sa.vectors.shape == sb.vectors.shape and len(sa.vectors) > len(a.content.paragraphs)
    assert np.sum(np.asarray(sa.vectors) * np.asarray(sb.vectors), axis=1).min() >= MIN_COSINE


def test_an_address_nothing_listens_on_is_refused_at_once(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "app.cli", "ingest", str(CORPUS), "--index", str(tmp_path / "index"),
                           "--ray", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 1
    assert f"no Ray cluster at 127.0.0.1:{port}" in done.stderr and "ray start --head" in done.stderr
    assert not (tmp_path / "index").exists()


def test_the_local_ingest_has_the_failures_to_compare(local):
    report, index = local
    assert [(kind, Path(path).name) for kind, path, _ in failures(report)] == [
        ("IngestError", "broken.pdf"), ("IngestError", "empty.txt")]
    assert len(index.documents) == 6 and len(index.content.passages) > 100 and not report.changed


def test_cli_ingest_on_ray_builds_the_local_index(cluster, bad_files, local, corpus_index, tmp_path, embedder):
    report, expected = local
    index_dir = fresh_index(tmp_path / "index", corpus_index)
    result = CliRunner().invoke(cli, ["ingest", str(CORPUS), str(bad_files), "--index", str(index_dir), "--ray", "auto"])
    assert result.exit_code == 1, result.output  # as locally: two files failed
    failed = sorted(line for line in result.stderr.splitlines() if line.startswith("failed "))
    assert failed == sorted(f"failed   {e}" for e in report.failed)
    assert "6 added" in result.stdout
    assert_same_index(expected, Index.open(index_dir, embedder.name, embedder.dimension))


def test_killed_workers_have_their_files_redone_once(cluster, bad_files, local, corpus_index, tmp_path, embedder):
    """The first parse task and the first encoder call each kill their own worker process; Ray runs them again."""
    report, expected = local
    parse_marker, encode_marker = tmp_path / "parse-killed", tmp_path / "encode-killed"

    def first(marker: Path) -> bool:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    def dying_parse(items, limits):
        if first(parse_marker):
            os._exit(1)
        return parse_batch(items, limits)

    class DyingEncoder(Encoder):
        def encode(self, block, texts):
            if first(encode_marker):
                os._exit(1)
            return super().encode(block, texts)

    parsed: list[int] = []
    with RayCluster.connect("auto", parse_task=dying_parse, encoder=DyingEncoder) as on_ray:
        def count_parse(jobs, limits, on_done):
            return on_ray.parse_files(jobs, limits, on_done=lambda i: (parsed.append(i), on_done(i)))

        got = ingest([CORPUS, bad_files], fresh_index(tmp_path / "index", corpus_index), on_ray.embedder(),
                     parse=count_parse)
    assert parse_marker.exists() and encode_marker.exists()  # both crashes happened
    assert sorted(parsed) == list(range(len(parsed))) and len(parsed) == 8  # every file once: 6 good, 2 bad
    assert sorted(got.added) == sorted(d.doc_id for d in expected.documents) and failures(got) == failures(report)
    assert got.passages_embedded == len(expected.content.passages) and not got.warnings
    assert_same_index(expected, Index.open(tmp_path / "index", embedder.name, embedder.dimension))
