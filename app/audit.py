"""The audit log: who uploaded, replaced or deleted which document, and when, and every refusal.

One JSON object per line, appended, never rewritten:
`{"at": "2026-11-29T07:12:03Z", "user": str, "email": str|null, "role": "editor", "action": "upload",
"doc": "memo" | null, "outcome": "done" | "refused", "detail": str|null}`.
Actions: upload (a new document), replace (a new version under the same name), delete, run evals,
open conversation (another user's, always refused), api sign-in (an unknown token sent to `rag serve`:
always refused, the user being "client ADDRESS"). Lines are written with O_APPEND under an
exclusive lock and fsynced, so two writers never interleave and a crash loses at most the line
being written; a torn last line is skipped on reading.

The log lies at $RAG_AUDIT_LOG, or else `audit.jsonl` beside the index folder (`.rag/audit.jsonl`),
0600. `require` is `app.auth.require` that also logs a refusal.

The Library's "added by" column (`added_by`) reads only the last `RECENT_BYTES` of the log, seeking
from its end, so a large log costs a view no more than that; a document whose upload lies before that
part shows no one there.

Not handled: rotation (the log grows by one short line per change; rotate it with logrotate's
copytruncate) and tamper evidence against someone who can write the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from app.auth import Forbidden, Principal, Role
from app.auth import require as require_role

AUDIT_ENV = "RAG_AUDIT_LOG"
DONE, REFUSED = "done", "refused"
ADDING = ("upload", "replace")
SIGN_IN = "api sign-in"
# What the Library reads of the log on each view: its last 1 MiB, about 5,000 entries.
RECENT_BYTES = 1024 * 1024


def default_path(index_dir: str | Path) -> Path:
    """$RAG_AUDIT_LOG, else audit.jsonl beside the index folder."""
    named = os.environ.get(AUDIT_ENV)
    return Path(named) if named else Path(index_dir).absolute().parent / "audit.jsonl"


def record(
    path: str | Path,
    principal: Principal,
    action: str,
    doc: str | None = None,
    outcome: str = DONE,
    detail: str | None = None,
    at: datetime | None = None,
) -> dict:
    """Append one entry and return it."""
    entry = {
        "at": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user": principal.user,
        "email": principal.email,
        "role": str(principal.role),
        "action": action,
        "doc": doc,
        "outcome": outcome,
        "detail": detail,
    }
    return _append(path, entry)


def record_failed_sign_in(path: str | Path, client: str | None, detail: str) -> dict:
    """A refused API sign-in (an unknown bearer token). Nobody is signed in, so the caller is named by its
    address, with no role; the token itself, or any part of it, is never written."""
    entry = {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user": f"client {client or 'unknown'}",
        "email": None,
        "role": "none",
        "action": SIGN_IN,
        "doc": None,
        "outcome": REFUSED,
        "detail": detail,
    }
    return _append(path, entry)


def _append(path: str | Path, entry: dict) -> dict:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # a crash tore the last line: it stays alone, and is skipped on reading
        os.write(fd, line)
        os.fsync(fd)
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    return entry


def record_ingest(path: str | Path, principal: Principal, report, detail: str) -> None:
    """One line per document an ingest (`rag.index.ingest.IngestReport`) added, replaced or removed."""
    for action, docs in (("upload", report.added), ("replace", report.updated), ("delete", report.removed)):
        for doc_id in docs:
            record(path, principal, action, doc_id, detail=detail)


def require(path: str | Path, principal: Principal, role: Role, action: str, doc: str | None = None) -> None:
    """`app.auth.require`, and a "refused" line in the log when it refuses."""
    try:
        require_role(principal, role, action)
    except Forbidden:
        record(path, principal, action, doc, REFUSED, f"needs {role}")
        raise


def read(path: str | Path) -> list[dict]:
    """Every entry, oldest first; [] when there is no log. A line that is not a JSON object is skipped."""
    try:
        text = Path(path).read_text("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return _entries(text)


def read_recent(path: str | Path, max_bytes: int = RECENT_BYTES) -> list[dict]:
    """The entries in the last `max_bytes` of the log, oldest first: what `read` gives, without reading
    (or holding) more than that of a log that has grown large. The line cut by the seek is skipped."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            begin = max(0, size - max_bytes - 1)  # a byte more, to tell whether the first line is whole
            f.seek(begin)
            data = f.read(size - begin)
    except FileNotFoundError:
        return []
    if begin:
        cut = data.find(b"\n")  # the first line began before the seek (or is the newline just before it)
        data = data[cut + 1 :] if cut >= 0 else b""
    return _entries(data.decode("utf-8", errors="replace"))


def _entries(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def added_by(path: str | Path, max_bytes: int = RECENT_BYTES) -> dict[str, dict]:
    """doc_id -> the latest successful upload or replace of it (a delete forgets it), from the last
    `max_bytes` of the log: the Library reads this on every view, so a document added before that part
    of the log shows no one (the whole log still says who)."""
    latest: dict[str, dict] = {}
    for entry in read_recent(path, max_bytes):
        doc, outcome = entry.get("doc"), entry.get("outcome")
        if not isinstance(doc, str) or outcome != DONE:
            continue
        if entry.get("action") in ADDING:
            latest[doc] = entry
        elif entry.get("action") == "delete":
            latest.pop(doc, None)
    return latest
