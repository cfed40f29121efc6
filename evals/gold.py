"""The gold set: load and check its items, and resolve each evidence quote to a paragraph of the index.

Item fields are documented in evals/gold/README.md. Not handled: scoring (evals.scoring) or
running questions (evals.runner).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError

DEFAULT_SET = Path(__file__).resolve().parent / "gold"
KINDS = ("fact", "paraphrase", "multi", "numeric", "disagreement", "unanswerable", "followup")


class GoldError(RagError):
    """A gold item is malformed or its evidence does not resolve against the index."""


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    kind: str
    answerable: bool
    reference_answer: str = ""
    key_facts: tuple = ()
    evidence: tuple[dict, ...] = ()
    history: tuple[dict, ...] = ()  # earlier turns of a follow-up
    source: str = ""
    pattern: str = ""  # the failure pattern it was written for (patterns.jsonl): year, qualifier, answer_type, ...
    answer_type: str = ""  # quantity, date, place, organisation, person, reason, other
    lead: tuple[str, ...] = ()  # acceptable verbatim spans for the lead line
    disagreement: dict | None = None  # {"values": [{"doc_id", "value"}]}; empty values: must not flag


def load_gold(path: str | Path, require_evidence: bool = True) -> list[GoldItem]:
    """Items of one JSONL file, or of every `*.jsonl` in a folder (sorted by name).

    `require_evidence=False` reads question-only sets such as evals/calibration.jsonl."""
    path = Path(path)
    files = sorted(path.glob("*.jsonl")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise GoldError(f"no gold set at {path}: pass a .jsonl file or a folder of them (default {DEFAULT_SET})")
    items: list[GoldItem] = []
    seen: set[str] = set()
    for f in files:
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{f.name} line {n}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise GoldError(f"{where}: not JSON ({e.msg}); each line must be one object") from None
            missing = [k for k in ("id", "question", "answerable") if k not in raw]
            if missing:
                raise GoldError(f"{where}: missing {', '.join(missing)}; see evals/gold/README.md for the fields")
            if raw["id"] in seen:
                raise GoldError(f"{where}: duplicate id {raw['id']!r}; ids must be unique across files")
            seen.add(raw["id"])
            if require_evidence and raw["answerable"] and not raw.get("evidence"):
                raise GoldError(f"{where} ({raw['id']}): an answerable item needs evidence [{{doc_id, quote}}]")
            items.append(
                GoldItem(
                    raw["id"],
                    raw["question"],
                    raw.get("kind", "fact"),
                    bool(raw["answerable"]),
                    raw.get("reference_answer", ""),
                    tuple(raw.get("key_facts", ())),
                    tuple(raw.get("evidence", ())),
                    tuple(raw.get("history", ())),
                    f.name,
                    raw.get("pattern", ""),
                    raw.get("answer_type", ""),
                    tuple(raw.get("lead", ())),
                    raw.get("disagreement"),
                )
            )
    return items


def resolve_evidence(items: list[GoldItem], paragraphs) -> dict[str, tuple[tuple[str, int], ...]]:
    """Gold quotes -> `(doc_id, para)` keys; each quote must be a substring of exactly one paragraph of its document."""
    by_doc: dict[str, list] = {}
    for p in paragraphs:
        by_doc.setdefault(p.doc_id, []).append(p)
    resolved: dict[str, tuple[tuple[str, int], ...]] = {}
    problems: list[str] = []
    for item in items:
        keys: list[tuple[str, int]] = []
        for ev in item.evidence:
            doc_id, quote = ev.get("doc_id", ""), ev.get("quote", "")
            if doc_id not in by_doc:
                problems.append(
                    f"{item.id}: document {doc_id!r} is not in the index (known: {', '.join(sorted(by_doc))})"
                )
                continue
            matches = [p.para for p in by_doc[doc_id] if quote and quote in p.text]
            if len(matches) != 1:
                what = "no paragraph" if not matches else f"{len(matches)} paragraphs ({matches})"
                problems.append(
                    f"{item.id}: quote matches {what} of {doc_id}: {quote[:60]!r}; "
                    f"quote a longer exact substring of one paragraph (see `rag show {doc_id} N`)"
                )
                continue
            keys.append((doc_id, matches[0]))
        resolved[item.id] = tuple(dict.fromkeys(keys))
    if problems:
        raise GoldError("gold evidence does not resolve:\n  " + "\n  ".join(problems))
    return resolved
