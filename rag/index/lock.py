"""One writer at a time: an flock on `<index>/.lock`, which holds the writer's pid.

A second writer gets `IndexBusy` naming that pid. Within one process the lock is re-entrant per index
folder and thread (the ingest inside an upload takes it again).

Not handled: concurrent writers on a network filesystem without flock.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rag.errors import IndexBusy
from rag.index.layout import PRIVATE_FILE, private_folder

# (index folder, thread) -> depth. flock conflicts between two open files even in one process, so a
# thread that already holds the lock (corpus.add_uploads, around ingest) must not take it again.
_held: dict[tuple[str, int], int] = {}


_held_guard = threading.Lock()


@contextmanager
def write_lock(index_dir: str | Path) -> Iterator[None]:
    """One writer at a time; a second one fails at once (`IndexBusy`) instead of waiting.

    Re-entrant within one thread: code that holds the lock may call `ingest`, which takes it
    again. Another thread or process still gets `IndexBusy`.
    """
    path = Path(index_dir)
    private_folder(path)
    key = (str(path.resolve()), threading.get_ident())
    with _held_guard:
        depth = _held.get(key, 0)
        if depth:
            _held[key] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _held_guard:
                _held[key] -= 1
        return
    # Opened without truncating, so that a refused writer does not wipe the holder's pid.
    fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock_holder_pid(path)
            who = f" (pid {holder})" if holder else ""
            raise IndexBusy(f"another ingest{who} is writing {path}; wait for it to finish") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with _held_guard:
            _held[key] = 1
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder_pid(index_dir: str | Path) -> int | None:
    """The pid written by the last writer to take the lock (it may have finished since)."""
    try:
        text = (Path(index_dir) / ".lock").read_text(encoding="ascii").strip()
    except (OSError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def lock_is_held(index_dir: str | Path) -> bool:
    """True while some writer holds the lock: another process, or any thread of this one (this one too)."""
    lock = Path(index_dir) / ".lock"
    if not lock.is_file():
        return False
    with _held_guard:
        if any(k[0] == str(Path(index_dir).resolve()) for k in _held):
            return True
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
