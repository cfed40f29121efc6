"""Ingest on a Ray cluster: the changed files are parsed and embedded by Ray tasks and actors.

`rag ingest --ray ADDRESS` runs the ingest of `rag.index.ingest` unchanged on the driver (the process
that runs it): planning, doc ids, chunking, assembly and the atomic swap of the new generation.
Two steps leave it, through the hooks `ingest(parse=..., embedder=...)`:

- **Parsing.** The driver reads each file to parse and ships its bytes through Ray's object store,
  in batches of up to `MAX_FILES_PER_TASK` files (about four batches per worker, so a slow file
  does not hold up the rest), two batches per worker in flight at most, so neither the driver nor
  the object store ever holds the whole corpus. A `parse_batch` task writes them under a temporary folder, by their
  own names, and parses them with `rag.load.worker.parse_files` and one parse worker: each file
  has the budgets and gets the errors of a local ingest, and its replies carry the driver's paths.
  The nodes need no shared file system.
- **Embedding** (chunks, then sentences). Texts go longest first, in blocks of `MIN_BLOCK`
  to `MAX_BLOCK`, to one `Encoder` actor per worker, each loading the model once.

A worker that dies is replaced: Ray runs a dead worker's task again (`max_retries`) and restarts
a dead actor (`max_restarts`) and runs its call again (`max_task_retries`). Results are keyed by
batch, and each batch is taken once, so a file is neither lost nor counted twice. A batch that
fails past its retries fails its files, each with a reason that says so; embedding that fails
past its retries raises `RayUnavailable`, and the previous generation stays in place.

Not handled: nodes without paracite and its dependencies installed at the driver's version (Ray
runs this package's functions by name on the workers), GPUs (the encoders run on CPU cores),
and parsing and embedding at the same time (embedding starts when the last file is parsed).
Importing this module does not import Ray; `RayCluster.connect` does.
"""

from __future__ import annotations

import json
import math
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from rag.embed.embedder import Embedder
from rag.errors import BadArgument, IngestError, OverBudget, RagError
from rag.load.limits import Limits
from rag.load.worker import Job, Result, _decode, parse_files

# Ray's own default for tasks: enough to outlive a node or two lost mid-task, few enough that a file that kills
# every worker it meets (a parser bug outside the parse subprocess) fails in minutes rather than never.
RETRIES = 3
# A batch of files is one task: enough files to amortise a task's overhead, few enough that a crash redoes
# little. A worker gets about four batches, so one slow filing does not leave the others idle at the end.
MAX_FILES_PER_TASK = 16
BATCHES_PER_WORKER = 4
# A block of texts is one call on an encoder: from 2 to 16 model batches of 32 texts, for the same reasons.
MIN_BLOCK, MAX_BLOCK = 64, 512
# How long the cluster's address may take to accept a connection before `--ray ADDRESS` is refused.
CONNECT_TIMEOUT_S = 10.0


class RayUnavailable(RagError):
    """Ray is not installed, the cluster cannot be reached, or it lost the work past its retries."""


def files_per_task(files: int, workers: int) -> int:
    """Files in one parse task.

    >>> files_per_task(20, 2), files_per_task(1000, 2), files_per_task(3, 8)
    (3, 16, 1)
    """
    return max(1, min(MAX_FILES_PER_TASK, math.ceil(files / (BATCHES_PER_WORKER * workers))))


def block_size(texts: int, workers: int) -> int:
    """Texts in one encoder call.

    >>> block_size(100, 2), block_size(20_000, 2), block_size(20_000, 64)
    (64, 512, 79)
    """
    return max(MIN_BLOCK, min(MAX_BLOCK, math.ceil(texts / (BATCHES_PER_WORKER * workers))))


def parse_batch(items: list[tuple[str, str, bytes]], limits: Limits) -> list[str]:
    """Parse files shipped by content, on a Ray worker; one JSON reply per `(driver path, doc_id, bytes)`.

    The replies are the parse worker's wire format (`rag.load.worker`), with every mention of the temporary
    copy's path replaced by the driver's, so the driver decodes them as it decodes a local worker's."""
    one_worker = replace(limits, workers=0 if limits.workers == 0 else 1)  # this task holds one CPU
    with tempfile.TemporaryDirectory(prefix="paracite-ray-") as tmp:
        jobs: list[Job] = []
        for k, (original, doc_id, data) in enumerate(items):
            copy = Path(tmp) / str(k) / Path(original).name  # the same name: titles and types come from it
            copy.parent.mkdir()
            copy.write_bytes(data)
            jobs.append((copy, doc_id))
        results = parse_files(jobs, one_worker)
        return [
            _reply(result, str(copy), original) for (copy, _), (original, _, _), result in zip(jobs, items, results)
        ]


def _reply(result: Result, copy: str, original: str) -> str:
    if isinstance(result, IngestError):
        error = {"reason": result.reason.replace(copy, original)}
        if isinstance(result, OverBudget):
            error.update(limit=result.limit, env=result.env)
        return json.dumps({"error": error})
    document = replace(result.document, source_path=original)
    return json.dumps(
        {
            "document": asdict(document),
            "warnings": [w.replace(copy, original) for w in result.warnings],
            "paragraphs": [asdict(p) for p in result.paragraphs],
        }
    )


class Encoder:
    """A Ray actor's state: one `Embedder`, whose model loads on the first block and stays for the rest."""

    def __init__(self):
        self.embedder = Embedder()

    def encode(self, block: int, texts: list[str]) -> tuple[int, np.ndarray]:
        return block, self.embedder.encode_documents(texts)


class RayCluster:
    """A connection to a Ray cluster that parses (`parse_files`) and embeds (`embedder()`) for `rag.index.ingest`.

    Example usage:

        with RayCluster.connect("auto") as cluster:
            ingest(paths, index_dir, cluster.embedder(), parse=cluster.parse_files)

    `workers` caps how many tasks and encoders run at once (default: the cluster's CPUs). `parse_task` and
    `encoder` are the function and class Ray runs; a test passes wrappers that crash a worker.
    """

    def __init__(
        self,
        ray,
        workers: int | None = None,
        retries: int = RETRIES,
        parse_task: Callable = parse_batch,
        encoder: type = Encoder,
    ):
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise RayUnavailable(
                "the Ray cluster has no CPUs to run tasks on; start its nodes with --num-cpus 1 or more"
            )
        if workers is not None and workers < 1:
            raise BadArgument(f"workers must be greater than 0. Currently, workers is {workers}")
        self.ray, self.retries = ray, retries
        self.workers = min(workers or cpus, cpus)
        self._parse = ray.remote(num_cpus=1, max_retries=retries)(parse_task)
        self._encoder_class = ray.remote(num_cpus=1, max_restarts=retries, max_task_retries=retries)(encoder)
        self._encoders: list = []

    @classmethod
    @contextmanager
    def connect(cls, address: str, **options) -> Iterator[RayCluster]:
        """Connect to the cluster at `address` ("auto": the one `ray start` runs on this machine) for the block.

        A process already connected to Ray (a notebook, a test) keeps its connection, and `address` is unused."""
        try:
            import ray
        except ImportError as e:
            raise RayUnavailable("--ray needs Ray, an optional extra: pip install -e '.[ray]'") from e
        started = False
        if not ray.is_initialized():
            _check_reachable(address)
            try:
                ray.init(address=address, logging_level="warning")
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise RayUnavailable(
                    f"no Ray cluster at {address} ({e}); start one with `ray start --head` and pass "
                    "the address it prints, or 'auto' on one of its nodes"
                ) from e
            started = True
        cluster = cls(ray, **options)
        try:
            yield cluster
        finally:
            cluster.close()
            if started:
                ray.shutdown()

    def embedder(self) -> Embedder:
        """An `Embedder` whose documents are embedded on the cluster (queries, and the ONNX export, stay here)."""
        return _RayEmbedder(self)

    def parse_files(
        self, jobs: list[Job], limits: Limits | None = None, on_done: Callable[[int], None] | None = None
    ) -> list[Result]:
        """`rag.load.worker.parse_files` on the cluster: one result per `(path, doc_id)`, in the jobs' order."""
        limits = limits or Limits()
        results: list[Result | None] = [None] * len(jobs)
        size = files_per_task(len(jobs), self.workers)
        batches = iter(range(0, len(jobs), size))
        pending: dict = {}  # task -> the job indices it parses

        def finish(i: int, result: Result) -> None:
            results[i] = result
            if on_done:
                on_done(i)

        while True:
            # Files are read as batches go out, and a few batches per worker wait in the object store at most,
            # so a large corpus is never held in the driver's memory whole.
            while len(pending) < 2 * self.workers and (start := next(batches, None)) is not None:
                items, indices = [], []
                for i in range(start, min(start + size, len(jobs))):
                    path, doc_id = jobs[i]
                    try:
                        items.append((str(path), doc_id, path.read_bytes()))
                        indices.append(i)
                    except OSError as e:  # as `load_file` words it
                        finish(i, IngestError(path, f"cannot be read ({e.strerror or e})"))
                if items:
                    pending[self._parse.remote(items, limits)] = indices
            if not pending:
                break
            (task,), _ = self.ray.wait(list(pending), num_returns=1)
            indices = pending.pop(task)
            try:
                replies = self.ray.get(task)
            except self.ray.exceptions.RayError as e:
                reason = (
                    f"the Ray task parsing it failed, up to {self.retries} retries included ({type(e).__name__}); "
                    "ingest it again, or without --ray"
                )
                replies = [json.dumps({"error": {"reason": reason}}) for _ in indices]
            for i, reply in zip(indices, replies):
                finish(i, _decode(reply.encode(), jobs[i][0])[0])  # the parse worker's own reply decoder
        return results  # type: ignore[return-value]

    def encode(
        self,
        texts: list[str],
        progress: bool | Callable[[int, int], None] = False,
        desc: str = "Embedding",
        dimension: int = Embedder.dimension,
    ) -> np.ndarray:
        """Normalised vectors of `texts`, in their order, embedded by the cluster's encoders."""
        out = np.zeros((len(texts), dimension), dtype=np.float32)
        if not texts:
            return out
        from ray.util import ActorPool
        from tqdm import tqdm

        # Longest first, as `Embedder` does locally: a block pads to texts of about its own length.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        size = block_size(len(texts), self.workers)
        blocks = [order[s : s + size] for s in range(0, len(texts), size)]
        pool = ActorPool(self._encoders_for(len(blocks)))
        submit = lambda actor, b: actor.encode.remote(b, [texts[i] for i in blocks[b]])  # noqa: E731
        done = 0
        with tqdm(
            total=len(texts),
            desc=f"{desc} on Ray",
            unit="chunk",
            file=sys.stderr,
            dynamic_ncols=True,
            disable=progress is not True,
        ) as bar:
            try:
                for b, vectors in pool.map_unordered(submit, list(range(len(blocks)))):
                    out[blocks[b]] = vectors
                    done += len(blocks[b])
                    bar.update(len(blocks[b]))
                    if callable(progress):
                        progress(done, len(texts))
            except self.ray.exceptions.RayError as e:
                first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
                raise RayUnavailable(
                    f"embedding on the Ray cluster failed past {self.retries} retries "
                    f"({type(e).__name__}: {first_line}); the index is unchanged"
                ) from e
        return out

    def _encoders_for(self, blocks: int) -> list:
        wanted = min(blocks, self.workers)
        while len(self._encoders) < wanted:
            self._encoders.append(self._encoder_class.remote())
        return self._encoders[:wanted]

    def close(self) -> None:
        """Let the encoders go, so their CPUs and memory return to the cluster."""
        for actor in self._encoders:
            self.ray.kill(actor)
        self._encoders = []


def _check_reachable(address: str) -> None:
    """Refuse a `host:port` nothing listens on at once: `ray.init` would retry it for minutes.

    >>> _check_reachable("auto")  # Ray finds the local cluster itself
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise RayUnavailable(
            f"no Ray cluster at {address} ({e.strerror or e}); start one with `ray start --head` and "
            "pass the address it prints, or 'auto' on one of its nodes"
        ) from e


class _RayEmbedder(Embedder):
    """The local `Embedder` (name, dimension, queries, ONNX export), with documents embedded on the cluster."""

    def __init__(self, cluster: RayCluster):
        super().__init__()
        self.cluster = cluster

    def encode_documents(
        self, texts: list[str], progress: bool | Callable[[int, int], None] = False, desc: str = "Embedding"
    ) -> np.ndarray:
        return self.cluster.encode(texts, progress, desc, self.dimension)
