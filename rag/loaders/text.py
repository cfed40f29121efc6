"""Plain text and Markdown, with optional front matter (`---` lines of `key: value`).

Not handled: full YAML (nested values, lists), reStructuredText, HTML inside Markdown.
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.loaders.base import Parsed, decode_text
from rag.paragraphs import Block, split_plain_text, strip_markdown_inline

_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """
    >>> split_front_matter('---\\ntitle: "A: B"\\nkind: briefing\\n---\\nBody')
    ({'title': 'A: B', 'kind': 'briefing'}, 'Body')
    """
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    meta: dict[str, str] = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            meta[key.strip().lower()] = value.strip().strip("\"'")
    return meta, text[m.end():]


def load_txt(path: Path, data: bytes) -> Parsed:
    warnings: list[str] = []
    meta, body = split_front_matter(decode_text(path, data, warnings))
    return Parsed(split_plain_text(body), meta, warnings=warnings)


def load_md(path: Path, data: bytes) -> Parsed:
    warnings: list[str] = []
    meta, body = split_front_matter(decode_text(path, data, warnings))
    body = re.sub(r"<!--.*?-->", "", body, flags=re.DOTALL)
    blocks = [Block(strip_markdown_inline(b.text), b.kind, b.page) for b in split_plain_text(body, markdown=True)]
    if "title" not in meta:
        first_heading = next((b.text for b in blocks if b.kind == "heading"), "")
        if first_heading:
            meta["title"] = first_heading
    return Parsed(blocks, meta, warnings=warnings)
