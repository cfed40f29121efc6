"""A conversation kept on disk and checked against the index: questions (strings) and `Answer`s.

Each answer is saved with `rag.present.to_json`, which keeps everything needed to show its
citations later without the engine: each cited paragraph's text and quote, and the sha256 of its
document at answer time. When the index later holds another version of that document (its hash
differs) or none, `citation_status` says so, so a caller can warn instead of silently showing
other text.

File shape (version `RECORD_VERSION`): `{"version": 2, "revision": int, "title": str | null, "messages":
[{"role": "user", "content": str} | {"role": "assistant", "answer": <rag.present JSON>}]}`; version 1
files (answers as flat records) and version 2 files written before `revision` existed (read as
revision 0) are still read. Files are named by a random id (`save_conversation`), so a chat survives
a page reload.

Conversations belong to their user: each signed-in user has a folder of their own under the
conversations folder (`user_folder`: users/<sha256 of the user id>), listed (`list_conversations`),
renamed (`rename_conversation`) and deleted (`delete_conversation`) there; the single local user of
an app without sign-in keeps the conversations folder itself, as before. A conversation id that
another user's folder holds is refused by the caller (`held_elsewhere`), so a URL opens only its
owner's conversation.

Conversation files hold what a visitor asked, so they are private and they do not pile up:
- the folder is 0700 and each file 0600 (older, wider files are narrowed when the folder is pruned);
- every save prunes the folder, per user (`prune_conversations`): conversations untouched for longer than
  `ConversationLimits.days` go, then the oldest beyond the count and size caps ($RAG_CONVERSATION_DAYS,
  default 30; $RAG_CONVERSATION_MAX, default 1000 files; $RAG_CONVERSATION_MAX_MB, default 200); an
  expired conversation also reads as empty;
- two tabs on one conversation: `commit_conversation` saves only on top of the revision its caller
  read, under a lock, and raises `ConversationConflict` otherwise, so the caller can reload the newer
  turns and add its own after them instead of overwriting them.

Not handled: rendering (`rag.present`, the UI), rewriting follow-up questions, a cap on one
conversation's own length, or locking on a network filesystem without flock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.documents import Answer, Paragraph
from rag.errors import BadArgument, ConversationConflict, UnknownParagraph
from rag.index.reader import Index
from rag.present import from_json, to_json

RECORD_VERSION = 2
OK, CHANGED, MISSING = "ok", "changed", "missing"

Turn = str | Answer  # a question as typed, or its answer


def citation_status(index: Index | None, doc_id: str, para: int, sha256: str) -> str:
    """OK when the index still holds the very version of the document that was cited, else CHANGED or MISSING."""
    if index is None:
        return MISSING
    try:
        current = index.document(doc_id).sha256
    except UnknownParagraph:
        return MISSING
    if current != sha256 or not index.has_paragraph(doc_id, para):
        return CHANGED
    return OK


def answer_status(answer: Answer, index: Index | None) -> dict[str, str]:
    """`citation_status` of every paragraph the answer shows (cited or retrieved), by label."""
    docs = answer.documents
    paragraphs = [(c.doc_id, c.para, c.label) for c in answer.citations]
    paragraphs += [(h.paragraph.doc_id, h.paragraph.para, h.paragraph.label) for h in answer.retrieved]
    if answer.lead:
        paragraphs.append((answer.lead.citation.doc_id, answer.lead.citation.para, answer.lead.citation.label))
    paragraphs += [
        (v.citation.doc_id, v.citation.para, v.citation.label) for d in answer.disagreements for v in d.values
    ]
    return {
        key: citation_status(index, doc_id, para, docs[doc_id].sha256 if doc_id in docs else "")
        for doc_id, para, key in paragraphs
    }


def neighbours(index: Index, doc_id: str, para: int) -> tuple[Paragraph | None, Paragraph | None]:
    """The paragraphs just before and after `para`, where they exist."""
    before = index.paragraph(doc_id, para - 1) if index.has_paragraph(doc_id, para - 1) else None
    after = index.paragraph(doc_id, para + 1) if index.has_paragraph(doc_id, para + 1) else None
    return before, after


def history(turns: list[Turn]) -> list[dict[str, str]]:
    """Earlier turns as `{"role", "content"}`, so a follow-up question can be rewritten before retrieval."""
    return [
        {"role": "user", "content": t}
        if isinstance(t, str)
        else {"role": "assistant", "content": " ".join(c.text for c in t.claims)}
        for t in turns
    ]


_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


def new_conversation_id() -> str:
    return uuid.uuid4().hex


USERS_DIR = "users"
TITLE_CHARS = 80


def user_folder(root: str | Path, user: str | None) -> Path:
    """The folder of `user`'s conversations under the conversations folder `root`; `root` itself for None
    (the one local user). Named by a hash, so an id never becomes a path and the folder name says nothing.

    >>> user_folder("convs", "https://idp#42").parent.as_posix(), user_folder("convs", None).as_posix()
    ('convs/users', 'convs')
    """
    if user is None:
        return Path(root)
    return Path(root) / USERS_DIR / hashlib.sha256(user.encode("utf-8")).hexdigest()[:32]


def held_elsewhere(root: str | Path, folder: str | Path, conversation_id: str) -> bool:
    """True when a folder under `root` other than `folder` (another user's, or the local user's) holds
    `conversation_id`: the caller must refuse to open it, and must not save under it."""
    name = conversation_path(Path(root), conversation_id).name
    folder = Path(folder).absolute()
    candidates = [Path(root)]
    users = Path(root) / USERS_DIR
    with contextlib.suppress(OSError):
        candidates += [d for d in users.iterdir() if d.is_dir()]
    return any(c.absolute() != folder and (c / name).is_file() for c in candidates)


@dataclass(frozen=True)
class ConversationSummary:
    conversation_id: str
    title: str
    updated: float  # the last save, seconds since the epoch
    questions: int


def list_conversations(
    folder: str | Path, limit: int = 50, limits: ConversationLimits | None = None
) -> list[ConversationSummary]:
    """The `limit` most recently saved conversations of one folder, newest first (expired and empty ones left out)."""
    limits = limits or ConversationLimits.from_env()
    cutoff = time.time() - limits.days * 86400
    found = []
    with contextlib.suppress(OSError):
        for path in Path(folder).iterdir():
            if path.suffix != ".json" or not _CONVERSATION_ID.fullmatch(path.stem):
                continue
            with contextlib.suppress(OSError):
                found.append((path.stat().st_mtime, path))
    summaries = []
    for mtime, path in sorted(found, key=lambda f: (-f[0], f[1].name)):
        if len(summaries) >= limit or mtime < cutoff:
            break
        try:
            data = json.loads(path.read_text("utf-8"))
            messages = data.get("messages", [])
            questions = [m.get("content", "") for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        except (OSError, ValueError, AttributeError):
            continue
        if not questions:
            continue
        title = data.get("title") if isinstance(data.get("title"), str) else None
        summaries.append(ConversationSummary(path.stem, title or _clip(str(questions[0])), mtime, len(questions)))
    return summaries


def rename_conversation(folder: str | Path, conversation_id: str, title: str) -> None:
    """Give a saved conversation a title (blank: back to its first question). Its turns and revision stay."""
    path = conversation_path(Path(folder), conversation_id)
    clean = _clip(" ".join(str(title).split()))
    with _folder_lock(_private_folder(path.parent)):
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise BadArgument(f"no saved conversation {conversation_id} to rename") from None
        except ValueError:
            raise BadArgument(f"conversation {conversation_id} cannot be read, so it cannot be renamed") from None
        data["title"] = clean or None
        _write_private(path, json.dumps(data, ensure_ascii=False))


def delete_conversation(folder: str | Path, conversation_id: str) -> bool:
    """Delete a saved conversation; False when there was none."""
    path = conversation_path(Path(folder), conversation_id)
    if not path.parent.is_dir():
        return False
    with _folder_lock(path.parent):
        try:
            path.unlink()
        except FileNotFoundError:
            return False
    return True


def _clip(text: str) -> str:
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1] + "…"


def conversation_path(folder: Path, conversation_id: str) -> Path:
    """Where a conversation is kept; ids are 32 hex digits, so a crafted id cannot reach another folder."""
    if not _CONVERSATION_ID.fullmatch(conversation_id or ""):
        raise BadArgument(f"not a conversation id: {conversation_id!r}")
    return Path(folder) / f"{conversation_id}.json"


@dataclass(frozen=True)
class ConversationLimits:
    """How long conversations are kept, and how many and how much of them, in one folder."""

    days: float = 30.0
    max_count: int = 1000
    max_mb: float = 200.0

    def __post_init__(self):
        for name, value in (("days", self.days), ("max_count", self.max_count), ("max_mb", self.max_mb)):
            if not value > 0:
                raise BadArgument(f"conversation limit {name} must be greater than 0, not {value!r}")

    @classmethod
    def from_env(cls) -> ConversationLimits:
        """From $RAG_CONVERSATION_DAYS, $RAG_CONVERSATION_MAX and $RAG_CONVERSATION_MAX_MB (unset: the defaults)."""
        values = {}
        for field, var, kind in (
            ("days", "RAG_CONVERSATION_DAYS", float),
            ("max_count", "RAG_CONVERSATION_MAX", int),
            ("max_mb", "RAG_CONVERSATION_MAX_MB", float),
        ):
            raw = os.environ.get(var, "").strip()
            if not raw:
                continue
            try:
                values[field] = kind(raw)
            except ValueError:
                raise BadArgument(
                    f"${var} is {raw!r}; set it to a number greater than 0 (default {getattr(cls, field)}), or unset it"
                ) from None
            if not values[field] > 0:
                raise BadArgument(f"${var} is {raw!r}; set it to a number greater than 0, or unset it")
        return cls(**values)


@dataclass(frozen=True)
class SavedConversation:
    turns: list[Turn]
    revision: int  # bumped by every save; 0 when none was saved (or the file predates revisions)


def _private_folder(folder: Path) -> Path:
    folder = Path(folder)
    missing = []
    while not folder.exists() and folder != folder.parent:  # every folder made here is 0700, parents too
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True, mode=0o700)
    folder = missing[0] if missing else folder
    st = folder.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(folder, 0o700)  # made before this rule, or by a wider umask: narrow it
    return folder


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """One writer at a time per folder. flock conflicts between two open files even within one process,
    so two Streamlit sessions (threads) saving at once are serialised as well as two processes."""
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _write_private(path: Path, text: str) -> None:
    """Atomically (a crash leaves the previous file whole), readable by the owner only."""
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")  # two writers never share a temp file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _disk_revision(path: Path) -> int | None:
    """The revision of the file at `path`, 0 for one without; None when there is no (readable) file."""
    try:
        data = json.loads(path.read_text("utf-8"))
        return int(data.get("revision", 0)) if isinstance(data, dict) else 0
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return 0


def _disk_title(path: Path) -> str | None:
    """The title a rename gave the file at `path`, kept across saves; None when it has none."""
    try:
        title = json.loads(path.read_text("utf-8")).get("title")
    except (OSError, ValueError, AttributeError):
        return None
    return title if isinstance(title, str) else None


def commit_conversation(
    folder: Path, conversation_id: str, turns: list[Turn], base_revision: int, limits: ConversationLimits | None = None
) -> int:
    """Save `turns` on top of `base_revision` (what the caller read) and return the new revision.

    Raises `ConversationConflict` when the file on disk has another revision (another tab saved in
    between): the caller reloads (`read_conversation`), adds its new turns after the newer ones, and
    commits again on top of the revision it just read. A file that is gone (pruned) is no conflict:
    no one else holds newer turns, so the caller's are written back.
    """
    path = conversation_path(folder, conversation_id)
    limits = limits or ConversationLimits.from_env()  # a bad setting fails before anything is written
    folder = _private_folder(path.parent)
    messages = [
        {"role": "user", "content": t} if isinstance(t, str) else {"role": "assistant", "answer": to_json(t)}
        for t in turns
    ]
    with _folder_lock(folder):
        current = _disk_revision(path)
        if current is not None and current != base_revision:
            raise ConversationConflict(conversation_id, base_revision, current)
        revision = max(current or 0, base_revision) + 1
        _write_private(
            path,
            json.dumps(
                {"version": RECORD_VERSION, "revision": revision, "title": _disk_title(path), "messages": messages},
                ensure_ascii=False,
            ),
        )
        prune_conversations(folder, limits, keep=path.name)
    return revision


def save_conversation(
    folder: Path, conversation_id: str, turns: list[Turn], limits: ConversationLimits | None = None
) -> Path:
    """Write the turns whatever is on disk (last writer wins); the chat page uses `commit_conversation`."""
    path = conversation_path(folder, conversation_id)
    while True:  # bounded in practice: each pass reads the revision it then writes on top of
        try:
            commit_conversation(folder, conversation_id, turns, _disk_revision(path) or 0, limits)
            return path
        except ConversationConflict:
            continue


def prune_conversations(
    folder: Path, limits: ConversationLimits, keep: str | None = None, now: float | None = None
) -> list[str]:
    """Delete expired conversations, then the least recently saved beyond the caps; returns the ids deleted.

    `keep` (a file name) is never deleted: it is the conversation being saved. Leftover temp files of
    a crashed save older than an hour go too. Files readable by others are narrowed to 0600.
    """
    now = time.time() if now is None else now
    entries = []
    for path in Path(folder).iterdir():
        try:
            st = path.stat()
        except OSError:
            continue
        if path.suffix == ".tmp" and now - st.st_mtime > 3600:
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if path.suffix != ".json" or not _CONVERSATION_ID.fullmatch(path.stem):
            continue
        if st.st_mode & 0o077:
            with contextlib.suppress(OSError):
                os.chmod(path, 0o600)
        entries.append((st.st_mtime, st.st_size, path))
    deleted = []
    cutoff = now - limits.days * 86400
    entries.sort(key=lambda e: (e[0], e[2].name))  # oldest first; ties by name, so the order is stable
    live = []
    for mtime, size, path in entries:
        if mtime < cutoff and path.name != keep:
            deleted.append(path)
        else:
            live.append((mtime, size, path))
    budget = limits.max_mb * 1024 * 1024
    total = sum(size for _, size, _ in live)
    count = len(live)
    for _mtime, size, path in live:
        if count <= limits.max_count and total <= budget:
            break
        if path.name == keep:
            continue
        deleted.append(path)
        count -= 1
        total -= size
    for path in deleted:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    return [p.stem for p in deleted]


def read_conversation(
    folder: Path, conversation_id: str, limits: ConversationLimits | None = None
) -> SavedConversation:
    """The saved turns and their revision; no turns when there are none, or they are unreadable, of an
    unknown version, or expired (the revision is still the file's, so a save on top of it is no conflict)."""
    try:
        path = conversation_path(folder, conversation_id)
        text = path.read_text("utf-8")
        mtime = path.stat().st_mtime
    except (OSError, BadArgument):
        return SavedConversation([], 0)
    try:
        data = json.loads(text)
        revision = int(data.get("revision", 0))
    except (ValueError, TypeError, AttributeError):
        return SavedConversation([], 0)
    limits = limits or ConversationLimits.from_env()
    if time.time() - mtime > limits.days * 86400:
        return SavedConversation([], revision)
    try:
        version = data.get("version")
        if version not in (1, RECORD_VERSION):
            return SavedConversation([], revision)
        return SavedConversation([_turn(m, version) for m in data.get("messages", [])], revision)
    except (ValueError, KeyError, TypeError, AttributeError, BadArgument):
        return SavedConversation([], revision)


def load_conversation(folder: Path, conversation_id: str) -> list[Turn]:
    """The saved turns, or [] when there are none (or they are unreadable, of an unknown version, or expired)."""
    return read_conversation(folder, conversation_id).turns


def _turn(message: dict[str, Any], version: int) -> Turn:
    if message["role"] == "user":
        return str(message["content"])
    return from_json(message["answer"] if version == RECORD_VERSION else {**message, "version": 1})
