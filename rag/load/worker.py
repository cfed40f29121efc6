"""Parse files in worker processes, each file within a wall-time and a memory budget.

`parse_files` hands files to at most `Limits.worker_count` workers. A worker is a fresh
interpreter (`python -c "...serve()"`, spawned, never forked), so it holds only this package and
its parsers: no torch, no model, nothing of the caller's state. It caps its own address space
(`RLIMIT_AS`); the caller kills it at the file's deadline. A worker that runs out of time or
memory, or dies, costs only its file, which comes back as an `OverBudget` or `IngestError`; a
fresh worker takes its place. Results come back in the order of the input, whatever order the
workers finish in, so an ingest is deterministic.

Requests and replies are JSON lines over the worker's stdin and stdout (no pickle: the worker
parses untrusted bytes, and its reply must not be able to run code in the caller).

Not handled: Windows (no `resource` module; the workers there run without a memory cap), a
budget shared by a whole ingest, sandboxing against a parser exploit (the worker runs as the
same user).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from rag.documents import Document, Paragraph
from rag.errors import IngestError, OverBudget
from rag.load import LoadedFile, load_file
from rag.load.limits import ENV, Limits

Job = tuple[Path, str]  # (path, doc_id)
Result = LoadedFile | IngestError

# The interpreter a worker starts with: the caller's own sys.path, so it imports this same `rag`.
_BOOT = "import sys, json; sys.path[:] = json.loads(sys.argv[1]); from rag.load.worker import serve; serve()"
# A worker asked to stop gets this long to exit before it is killed.
_EXIT_GRACE_S = 2.0
# Starting an interpreter and importing the parsers takes ~0.4 s, far more on a loaded machine; a
# file's budget starts when its worker says it is ready, and a worker that never does is given up.
_BOOT_TIMEOUT_S = 60.0


def parse_files(
    jobs: list[Job], limits: Limits | None = None, on_done: Callable[[int], None] | None = None
) -> list[Result]:
    """Load each `(path, doc_id)` within `limits`; one result per job, in the jobs' order.

    `on_done(i)` is called in the caller's thread as job `i` finishes (in any order).
    """
    limits = limits or Limits()
    results: list[Result | None] = [None] * len(jobs)
    # Without a known interpreter to start (an embedded Python), parse here rather than not at all.
    count = limits.worker_count(len(jobs)) if sys.executable else 0
    if count == 0:  # in-process: the byte, page and character budgets still hold
        for i, (path, doc_id) in enumerate(jobs):
            results[i] = _load_here(path, doc_id, limits)
            if on_done:
                on_done(i)
        return results  # type: ignore[return-value]
    pending = deque(range(len(jobs)))
    workers: list[_Worker] = []
    selector = selectors.DefaultSelector()
    try:
        workers = [_Worker(limits, selector) for _ in range(count)]
        while pending or any(w.job is not None for w in workers):
            for worker in workers:
                if worker.job is None and pending:
                    i = pending.popleft()
                    worker.start(i, jobs[i])
            busy = [w for w in workers if w.job is not None]
            if any(w.eof or w.lines for w in busy):
                timeout = 0.0
            else:
                timeout = max(0.0, min(w.deadline for w in busy) - time.monotonic())
            for key, _ in selector.select(timeout):
                key.data.read()
            for worker in busy:
                outcome = worker.outcome()
                if outcome is None:
                    continue
                i, result = outcome
                results[i] = result
                if on_done:
                    on_done(i)
    finally:
        for worker in workers:
            worker.close()
        selector.close()
    return results  # type: ignore[return-value]


def _load_here(path: Path, doc_id: str, limits: Limits) -> Result:
    try:
        return load_file(path, doc_id=doc_id, limits=limits)
    except IngestError as e:
        return e
    except MemoryError:
        return _memory_error(path, limits)
    except RecursionError:
        return IngestError(path, "structure nested too deeply to parse; simplify or convert the file")
    except Exception as e:  # a parser bug must cost one file, not the ingest
        return IngestError(path, f"the parser failed ({type(e).__name__}: {e}); please report this file")


def _memory_error(path: Path, limits: Limits) -> OverBudget:
    return OverBudget(
        path,
        f"parsing needs more than the memory limit of {limits.memory_mb:,} MB; raise {ENV['memory_mb']} to ingest it",
        "memory_mb",
        ENV["memory_mb"],
    )


class _Worker:
    """One worker process, parsing one job at a time; replaced whenever it fails."""

    def __init__(self, limits: Limits, selector: selectors.BaseSelector):
        self.limits, self.selector = limits, selector
        self.proc: subprocess.Popen | None = None
        self.job: int | None = None
        self.path: Path | None = None
        self.deadline = float("inf")
        self.buffer = bytearray()
        self.lines = (
            0  # complete lines in the buffer, counted per chunk: rescanning a 10 MB reply per read is quadratic
        )
        self.eof = False
        self.ready = False

    def _spawn(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _BOOT, json.dumps([p for p in sys.path if p])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            close_fds=True,
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.selector.register(self.proc.stdout, selectors.EVENT_READ, self)
        self.buffer, self.lines, self.eof, self.ready = bytearray(), 0, False, False
        self.boot_deadline = time.monotonic() + _BOOT_TIMEOUT_S

    def start(self, i: int, job: Job) -> None:
        if self.proc is None:
            self._spawn()
        path, doc_id = job
        self.job, self.path = i, path
        request = {"path": str(path), "doc_id": doc_id, "limits": asdict(self.limits)}
        self.deadline = time.monotonic() + self.limits.seconds_per_file if self.ready else self.boot_deadline
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.eof = True  # it died before the request; outcome() reports it

    def read(self) -> None:
        try:
            chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return
        if chunk:
            self.buffer += chunk
            self.lines += chunk.count(b"\n")
        else:
            self.eof = True

    def outcome(self) -> tuple[int, Result] | None:
        """The job's result once there is one (a reply, a death, or the deadline), else None."""
        if self.job is None:
            return None
        if not self.ready and self.lines:
            self._line()  # the "ready" line
            self.ready = True
            self.deadline = time.monotonic() + self.limits.seconds_per_file
        if self.ready and self.lines:
            line = self._line()
            result, fatal = _decode(line, self.path)
            if fatal or self.eof:
                self._stop()
            return self._finish(result)
        if self.eof:
            code = self.proc.wait()
            self._stop()
            return self._finish(self._death(code))
        if time.monotonic() >= self.deadline:
            self._stop(kill=True)
            if not self.ready:
                return self._finish(
                    IngestError(
                        self.path,
                        f"no parse worker started within {_BOOT_TIMEOUT_S:g} s; "
                        "the machine may be overloaded, try again",
                    )
                )
            return self._finish(
                OverBudget(
                    self.path,
                    f"parsing took longer than the limit of {self.limits.seconds_per_file:g} s; "
                    f"raise {ENV['seconds_per_file']} to ingest it",
                    "seconds_per_file",
                    ENV["seconds_per_file"],
                )
            )
        return None

    def _line(self) -> bytes:
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        self.lines -= 1
        return line

    def _finish(self, result: Result) -> tuple[int, Result]:
        i, self.job, self.path, self.deadline = self.job, None, None, float("inf")
        return i, result

    def _death(self, code: int) -> IngestError:
        if code in (-signal.SIGKILL, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS):
            # Running out of address space inside C code ends in a signal rather than a MemoryError.
            return OverBudget(
                self.path,
                f"the parse worker died (signal {-code}), most likely over the memory "
                f"limit of {self.limits.memory_mb:,} MB; raise {ENV['memory_mb']} to "
                f"ingest it",
                "memory_mb",
                ENV["memory_mb"],
            )
        return IngestError(self.path, f"the parse worker exited with code {code}; please report this file")

    def _stop(self, kill: bool = False) -> None:
        if self.proc is None:
            return
        self.selector.unregister(self.proc.stdout)
        if kill:
            self.proc.kill()
        else:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(_EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        if not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        self.proc = None

    def close(self) -> None:
        self._stop(kill=self.job is not None)


def _decode(line: bytes, path: Path) -> tuple[Result, bool]:
    """A worker's reply as a result, and whether the worker should be replaced."""
    try:
        reply = json.loads(line)
        if "error" in reply:
            e = reply["error"]
            if e.get("limit"):
                return OverBudget(path, e["reason"], e["limit"], e["env"]), bool(e.get("fatal"))
            return IngestError(path, e["reason"]), bool(e.get("fatal"))
        doc = reply["document"]
        document = Document(**doc)
        paragraphs = [Paragraph.from_json(p) for p in reply["paragraphs"]]
        return LoadedFile(document, paragraphs, tuple(reply["warnings"])), False
    except (ValueError, KeyError, TypeError) as e:
        return IngestError(
            path, f"the parse worker sent an unreadable reply ({type(e).__name__}); please report this file"
        ), True


def serve() -> None:
    """The worker's loop: one JSON request per line on stdin, one JSON reply per line on stdout."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a stray print from a parser must not corrupt replies
    replies.write(b'{"ready": true}\n')
    replies.flush()
    limits_set = False
    for line in sys.stdin.buffer:
        request = json.loads(line)
        if request.get("op") == "modules":  # lets a test check what a worker imported
            replies.write(json.dumps({"modules": sorted(sys.modules)}).encode() + b"\n")
            replies.flush()
            continue
        limits = Limits(**request["limits"])
        if not limits_set:
            _cap_memory(limits.memory_mb)
            limits_set = True
        path = Path(request["path"])
        fatal = False
        try:
            result = _load_here(path, request["doc_id"], limits)
        except MemoryError:  # raised again while turning the first one into a result
            result = _memory_error(path, limits)
        if isinstance(result, OverBudget) and result.limit == "memory_mb":
            fatal = True  # after a MemoryError the heap may be fragmented: start afresh
        try:
            if isinstance(result, IngestError):
                error = {"reason": result.reason, "fatal": fatal}
                if isinstance(result, OverBudget):
                    error.update(limit=result.limit, env=result.env)
                reply = {"error": error}
            else:
                reply = {
                    "document": asdict(result.document),
                    "warnings": list(result.warnings),
                    "paragraphs": [asdict(p) for p in result.paragraphs],
                }
            data = json.dumps(reply).encode() + b"\n"
        except MemoryError:
            result, reply = None, None
            data = (
                json.dumps(
                    {
                        "error": {
                            "reason": _memory_error(path, limits).reason,
                            "limit": "memory_mb",
                            "env": ENV["memory_mb"],
                            "fatal": True,
                        }
                    }
                ).encode()
                + b"\n"
            )
            fatal = True
        replies.write(data)
        replies.flush()
        if fatal:
            return


def _cap_memory(memory_mb: int) -> None:
    try:
        import resource
    except ImportError:  # Windows: no RLIMIT_AS; the time budget still holds
        return
    cap = memory_mb * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):  # e.g. macOS, which refuses RLIMIT_AS below the current size
        pass


def worker_modules() -> list[str]:
    """The modules a fresh worker holds once ready: a check that it imports no torch or model."""
    proc = subprocess.run(
        [sys.executable, "-c", _BOOT, json.dumps([p for p in sys.path if p])],
        input=b'{"op": "modules"}\n',
        capture_output=True,
        timeout=_BOOT_TIMEOUT_S,
        check=True,
    )
    replies = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return next(r["modules"] for r in replies if "modules" in r)
