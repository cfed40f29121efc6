"""`rag ingest --ray`: on a real local Ray cluster (2 CPUs) with the real model, the index is the one a local ingest
builds from the same files, bad files are reported as a local ingest reports them, and workers killed mid-ingest
have their files parsed and embedded again, none lost and none twice.

Each test that starts Ray runs it in a child process of its own, under a time limit (`run_on_ray`): a Ray that
aborts (a SIGABRT took the whole suite down on a busy machine) or hangs fails that one test, and the rest of the
run goes on. The child writes what it saw to a JSON file; the assertions run here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rag.embed.onnx_encoder import encoder_folder
from rag.index.ingest import ingest
from rag.index.reader import Index
from tests.conftest import CORPUS, ROOT

# Vectors agree to this cosine: documents may be encoded in bfloat16 (rag.embed.embedder.document_precision), whose
# rounding depends on which texts share a batch, and Ray's blocks batch them differently from a local ingest.
MIN_COSINE = 0.999


# A child that starts Ray, ingests the shipped corpus and stops Ray took about 100 s on a busy 2-core machine.
RAY_TIMEOUT_S = 600
# What every child runs first: the cluster the tests used to share, 2 CPUs, no dashboard.
_RAY_START = """
import json, sys
import ray
ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 2**20, logging_level="warning")
"""


def run_on_ray(body: str, tmp_path: Path, timeout: float = RAY_TIMEOUT_S, start_ray: bool = True, **args) -> dict:
    """Run `body` after `ray.init` in a fresh interpreter, with `args` as the dict `ARGS`; it sets `out`, a
    JSON-able dict, which comes back. A child that dies or runs past `timeout` fails the test (its whole
    process group, Ray's own processes included, is killed), with the end of its output."""
    result = tmp_path / "child-result.json"
    code = (_RAY_START if start_ray else "import json, sys\n") + f"ARGS = json.loads({json.dumps(json.dumps(args))})\n"
    code += textwrap.dedent(body) + ("\nray.shutdown()" if start_ray else "")
    code += f"\nopen({str(result)!r}, 'w').write(json.dumps(out))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        pytest.fail(f"the Ray child ran past {timeout:g} s and was killed; its output ended:\n{output[-3000:]}")
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # whatever Ray left behind in the child's group
        except ProcessLookupError:
            pass
    if child.returncode != 0 or not result.exists():
        pytest.fail(f"the Ray child exited with {child.returncode}; its output ended:\n{output[-3000:]}")
    return json.loads(result.read_text())


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
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "ingest",
            str(CORPUS),
            "--index",
            str(tmp_path / "index"),
            "--ray",
            f"127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert f"no Ray cluster at 127.0.0.1:{port}" in done.stderr and "ray start --head" in done.stderr
    assert not (tmp_path / "index").exists()


def test_the_local_ingest_has_the_failures_to_compare(local):
    report, index = local
    assert [(kind, Path(path).name) for kind, path, _ in failures(report)] == [
        ("IngestError", "broken.pdf"),
        ("IngestError", "empty.txt"),
    ]
    assert len(index.documents) == 6 and len(index.content.passages) > 50 and not report.changed  # 73: passages on


def test_cli_ingest_on_ray_builds_the_local_index(bad_files, local, corpus_index, tmp_path, embedder):
    report, expected = local
    index_dir = fresh_index(tmp_path / "index", corpus_index)
    got = run_on_ray(
        """
        from click.testing import CliRunner
        from app.cli import cli
        result = CliRunner().invoke(cli, ["ingest", *ARGS["paths"], "--index", ARGS["index"], "--ray", "auto"])
        out = {"exit_code": result.exit_code, "output": result.output, "stdout": result.stdout,
               "stderr": result.stderr}
    """,
        tmp_path,
        paths=[str(CORPUS), str(bad_files)],
        index=str(index_dir),
    )
    assert got["exit_code"] == 1, got["output"]  # as locally: two files failed
    failed = sorted(line for line in got["stderr"].splitlines() if line.startswith("failed "))
    assert failed == sorted(f"failed   {e}" for e in report.failed)
    assert "6 added" in got["stdout"]
    assert_same_index(expected, Index.open(index_dir, embedder.name, embedder.dimension))


def test_killed_workers_have_their_files_redone_once(bad_files, local, corpus_index, tmp_path, embedder):
    """The first parse task and the first encoder call each kill their own worker process; Ray runs them again."""
    report, expected = local
    parse_marker, encode_marker = tmp_path / "parse-killed", tmp_path / "encode-killed"
    index_dir = fresh_index(tmp_path / "index", corpus_index)
    got = run_on_ray(
        """
        import os
        from pathlib import Path
        from app.distributed import Encoder, RayCluster, parse_batch
        from rag.index.ingest import ingest

        parse_marker, encode_marker = Path(ARGS["parse_marker"]), Path(ARGS["encode_marker"])

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

        parsed = []
        with RayCluster.connect("auto", parse_task=dying_parse, encoder=DyingEncoder) as on_ray:
            def count_parse(jobs, limits, on_done):
                return on_ray.parse_files(jobs, limits, on_done=lambda i: (parsed.append(i), on_done(i)))

            got = ingest(ARGS["paths"], ARGS["index"], on_ray.embedder(), parse=count_parse)
        out = {"parsed": parsed, "added": got.added, "passages_embedded": got.passages_embedded,
               "warnings": got.warnings, "failed": [[type(e).__name__, e.path, e.reason] for e in got.failed]}
    """,
        tmp_path,
        paths=[str(CORPUS), str(bad_files)],
        index=str(index_dir),
        parse_marker=str(parse_marker),
        encode_marker=str(encode_marker),
    )
    assert parse_marker.exists() and encode_marker.exists()  # both crashes happened
    parsed = got["parsed"]
    assert sorted(parsed) == list(range(len(parsed))) and len(parsed) == 8  # every file once: 6 good, 2 bad
    assert sorted(got["added"]) == sorted(d.doc_id for d in expected.documents)
    assert sorted(map(tuple, got["failed"])) == failures(report)
    assert got["passages_embedded"] == len(expected.content.passages) and not got["warnings"]
    assert_same_index(expected, Index.open(index_dir, embedder.name, embedder.dimension))


def test_a_ray_child_that_aborts_fails_its_test_alone(tmp_path):
    """What `run_on_ray` turns a crash of Ray into: a failure of the test, not a SIGABRT of pytest."""
    with pytest.raises(pytest.fail.Exception, match=r"exited with -6"):
        run_on_ray("import os; os.abort()", tmp_path, start_ray=False)
    with pytest.raises(pytest.fail.Exception, match=r"ran past 1 s and was killed"):
        run_on_ray("import time; time.sleep(60)", tmp_path, timeout=1, start_ray=False)
    assert run_on_ray("out = {'seen': ARGS['x']}", tmp_path, start_ray=False, x=[1, "two"]) == {"seen": [1, "two"]}
