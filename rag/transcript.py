"""A conversation kept on disk and checked against the index: questions (strings) and `Answer`s.

Each answer is saved with `rag.present.to_json`, which keeps everything needed to show its
citations later without the engine: each cited paragraph's text and quote, and the sha256 of its
document at answer time. When the index later holds another version of that document (its hash
differs) or none, `citation_status` says so, so a caller can warn instead of silently showing
other text.

File shape (version `RECORD_VERSION`): `{"version": 2, "messages": [{"role": "user", "content": str} |
{"role": "assistant", "answer": <rag.present JSON>}]}`; version 1 files (answers as flat records)
are still read. Files are named by a random id (`save_conversation`), so a chat survives a page
reload. Not handled: rendering (`rag.present`, the UI), or rewriting follow-up questions.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any, Union

from rag.documents import Answer, Paragraph
from rag.errors import BadArgument, UnknownParagraph
from rag.present import from_json, to_json
from rag.store import Index

RECORD_VERSION = 2
OK, CHANGED, MISSING = "ok", "changed", "missing"

Turn = Union[str, Answer]  # a question as typed, or its answer


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
    paragraphs += [(v.citation.doc_id, v.citation.para, v.citation.label)
                   for d in answer.disagreements for v in d.values]
    return {key: citation_status(index, doc_id, para, docs[doc_id].sha256 if doc_id in docs else "")
            for doc_id, para, key in paragraphs}


def neighbours(index: Index, doc_id: str, para: int) -> tuple[Paragraph | None, Paragraph | None]:
    """The paragraphs just before and after `para`, where they exist."""
    before = index.paragraph(doc_id, para - 1) if index.has_paragraph(doc_id, para - 1) else None
    after = index.paragraph(doc_id, para + 1) if index.has_paragraph(doc_id, para + 1) else None
    return before, after


def history(turns: list[Turn]) -> list[dict[str, str]]:
    """Earlier turns as `{"role", "content"}`, so a follow-up question can be rewritten before retrieval."""
    return [{"role": "user", "content": t} if isinstance(t, str) else
            {"role": "assistant", "content": " ".join(c.text for c in t.claims)} for t in turns]


_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def conversation_path(folder: Path, conversation_id: str) -> Path:
    """Where a conversation is kept; ids are 32 hex digits, so a crafted id cannot reach another folder."""
    if not _CONVERSATION_ID.fullmatch(conversation_id or ""):
        raise BadArgument(f"not a conversation id: {conversation_id!r}")
    return Path(folder) / f"{conversation_id}.json"


def save_conversation(folder: Path, conversation_id: str, turns: list[Turn]) -> Path:
    """Write the turns atomically (a crash leaves the previous file whole)."""
    path = conversation_path(folder, conversation_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    messages = [{"role": "user", "content": t} if isinstance(t, str) else {"role": "assistant", "answer": to_json(t)}
                for t in turns]
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")  # two tabs saving at once never share a temp file
    tmp.write_text(json.dumps({"version": RECORD_VERSION, "messages": messages}, ensure_ascii=False), "utf-8")
    os.replace(tmp, path)
    return path


def load_conversation(folder: Path, conversation_id: str) -> list[Turn]:
    """The saved turns, or [] when there are none (or they are unreadable, or of an unknown version)."""
    try:
        data = json.loads(conversation_path(folder, conversation_id).read_text("utf-8"))
        version = data.get("version")
        if version not in (1, RECORD_VERSION):
            return []
        return [_turn(m, version) for m in data.get("messages", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, BadArgument):
        return []


def _turn(message: dict[str, Any], version: int) -> Turn:
    if message["role"] == "user":
        return str(message["content"])
    return from_json(message["answer"] if version == RECORD_VERSION else {**message, "version": 1})
