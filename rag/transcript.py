"""A conversation as plain, JSON-serialisable dicts, checked against the index and exported to Markdown.

An answer is recorded with everything needed to show its citations later without the engine:
each cited paragraph's text and quote, and the sha256 of its document at answer time. When the
index later holds another version of that document (its hash differs) or none, `citation_status`
says so, so a caller can warn instead of silently showing other text.

Record shapes (version `RECORD_VERSION`):

    {"role": "user", "content": str}
    {"role": "assistant", "version": 1, "question", "standalone_question", "abstained", "answerer", "notes", "timings_ms",
     "claims": [{"text", "support", "cites": [key, ...]}],
     "citations": {key: {"doc_id", "para", "page", "title", "quote", "text", "source_paras", "sha256"}},
     "retrieved": [{"doc_id", "para", "page", "title", "text", "score", "scores_by_retriever", "sha256", "cited"}]}

where key is the citation label, e.g. "caixin-commentary para. 4".
Conversations are saved as JSON files named by a random id (`save_conversation`), so a chat
survives a page reload. Not handled: rendering (the UI's job), or rewriting follow-up questions.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rag.documents import Answer, Paragraph
from rag.errors import BadArgument, UnknownParagraph
from rag.store import Index

RECORD_VERSION = 1
OK, CHANGED, MISSING = "ok", "changed", "missing"


def label(doc_id: str, para: int) -> str:
    """
    >>> label("caixin-commentary", 4)
    'caixin-commentary para. 4'
    """
    return f"{doc_id} para. {para}"


def answer_record(answer: Answer, index: Index) -> dict[str, Any]:
    """The answer as a dict that survives reruns and JSON, with each cited document's current hash."""
    hashes = {d.doc_id: d.sha256 for d in index.documents}
    citations: dict[str, dict[str, Any]] = {}
    claims = []
    for claim in answer.claims:
        keys = []
        for c in claim.citations:
            key = label(c.doc_id, c.para)
            keys.append(key)
            citations.setdefault(key, {
                "doc_id": c.doc_id, "para": c.para, "page": c.page, "title": c.title, "quote": c.quote,
                "text": c.text, "source_paras": list(c.source_paras), "sha256": hashes.get(c.doc_id, ""),
            })
        claims.append({"text": claim.text, "support": claim.support.value, "cites": keys})
    titles = {d.doc_id: d.title for d in index.documents}
    retrieved = [
        {"doc_id": h.paragraph.doc_id, "para": h.paragraph.para, "page": h.paragraph.page,
         "title": titles.get(h.paragraph.doc_id, ""), "text": h.paragraph.text,
         "source_paras": list(h.paragraph.source_paras), "score": float(h.score),
         "scores_by_retriever": {k: float(v) for k, v in h.scores_by_retriever.items()},
         "sha256": hashes.get(h.paragraph.doc_id, ""),
         "cited": label(h.paragraph.doc_id, h.paragraph.para) in citations}
        for h in answer.retrieved
    ]
    return {"role": "assistant", "version": RECORD_VERSION, "question": answer.question,
            "standalone_question": answer.standalone_question,
            "abstained": answer.abstained, "answerer": answer.answerer, "notes": list(answer.notes),
            "timings_ms": {k: round(float(v), 1) for k, v in answer.timings_ms.items()},
            "claims": claims, "citations": citations, "retrieved": retrieved}


def citation_status(record: dict[str, Any], index: Index | None) -> str:
    """OK when the index still holds the very version of the document that was cited, else CHANGED or MISSING."""
    if index is None:
        return MISSING
    try:
        current = index.document(record["doc_id"]).sha256
    except UnknownParagraph:
        return MISSING
    if current != record.get("sha256") or not index.has_paragraph(record["doc_id"], record["para"]):
        return CHANGED
    return OK


def neighbours(index: Index, doc_id: str, para: int) -> tuple[Paragraph | None, Paragraph | None]:
    """The paragraphs just before and after `para`, where they exist."""
    before = index.paragraph(doc_id, para - 1) if index.has_paragraph(doc_id, para - 1) else None
    after = index.paragraph(doc_id, para + 1) if index.has_paragraph(doc_id, para + 1) else None
    return before, after


_CONVERSATION_ID = re.compile(r"[0-9a-f]{32}")


def new_conversation_id() -> str:
    return uuid.uuid4().hex


def conversation_path(folder: Path, conversation_id: str) -> Path:
    """Where a conversation is kept; ids are 32 hex digits, so a crafted id cannot reach another folder."""
    if not _CONVERSATION_ID.fullmatch(conversation_id or ""):
        raise BadArgument(f"not a conversation id: {conversation_id!r}")
    return Path(folder) / f"{conversation_id}.json"


def save_conversation(folder: Path, conversation_id: str, messages: list[dict[str, Any]]) -> Path:
    """Write the records atomically (a crash leaves the previous file whole)."""
    path = conversation_path(folder, conversation_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{uuid.uuid4().hex}.tmp")  # two tabs saving at once never share a temp file
    tmp.write_text(json.dumps({"version": RECORD_VERSION, "messages": messages}, ensure_ascii=False), "utf-8")
    os.replace(tmp, path)
    return path


def load_conversation(folder: Path, conversation_id: str) -> list[dict[str, Any]]:
    """The saved records, or [] when there are none (or they are unreadable, or of another version)."""
    try:
        data = json.loads(conversation_path(folder, conversation_id).read_text("utf-8"))
    except (OSError, ValueError, BadArgument):
        return []
    return data.get("messages", []) if data.get("version") == RECORD_VERSION else []


def to_markdown(messages: Iterable[dict[str, Any]], title: str = "paracite conversation") -> str:
    """The conversation as Markdown: each answer sentence with its markers, then each cited paragraph in full.

    >>> print(to_markdown([{"role": "user", "content": "Q?"}]).strip())
    # paracite conversation
    <BLANKLINE>
    ## Question
    <BLANKLINE>
    Q?
    """
    out = [f"# {title}", ""]
    for m in messages:
        if m.get("role") == "user":
            out += ["## Question", "", str(m.get("content", "")), ""]
            continue
        out += ["## Answer", ""]
        if m.get("abstained"):
            out += [_sentence(m["claims"][0]["text"]) if m.get("claims") else "Not found in the documents.", ""]
            closest = m.get("retrieved", [])[:3]
            if closest:
                out += ["Closest paragraphs:", ""]
                for r in closest:
                    out += [f"- [{label(r['doc_id'], r['para'])}] {r['title']}", ""] + _quote(r["text"]) + [""]
            continue
        sentences = []
        for claim in m.get("claims", []):
            markers = "".join(f"[{k}]" for k in claim.get("cites", []))
            sentences.append(f"{_sentence(claim['text'])} {markers}".strip())
        out += [" ".join(sentences), ""]
        cites = m.get("citations", {})
        if cites:
            out += ["### Sources", ""]
            for key, c in cites.items():
                where = f", page {c['page']}" if c.get("page") else ""
                refs = (f" (original article para. {', '.join(map(str, c['source_paras']))})"
                        if c.get("source_paras") else "")
                out += [f"**[{key}]** {c['title']}{where}{refs}", ""] + _quote(c["text"]) + [""]
        for note in m.get("notes", []):
            out += [f"_Note: {note}_", ""]
    return "\n".join(out).rstrip() + "\n"


def _sentence(text: str) -> str:
    return " ".join(str(text).split())


def _quote(text: str) -> list[str]:
    return [f"> {line}" if line else ">" for line in str(text).splitlines()] or [">"]
