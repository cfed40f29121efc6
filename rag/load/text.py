"""Plain text and Markdown, with optional front matter (`---` lines of `key: value`).

Not handled: full YAML (nested values, lists), reStructuredText, HTML inside Markdown (but for
`<!-- comments -->`, which are dropped; an unclosed one is kept as text, as before).
"""

from __future__ import annotations

import re
from pathlib import Path

from rag.load.base import Parsed, decode_text
from rag.load.paragraphs import Block, split_plain_text, strip_markdown_inline

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
    return meta, text[m.end() :]


def strip_html_comments(text: str) -> str:
    """Drop `<!-- ... -->` comments in one pass; an unclosed `<!--` and what follows stay.

    The regex `<!--.*?-->` did the same but rescanned the rest of the text from every unclosed
    `<!--` (quadratic: 156 KB took 25 s).

    >>> strip_html_comments("a <!-- x --> b <!-- open")
    'a  b <!-- open'
    """
    out: list[str] = []
    pos = 0
    while (start := text.find("<!--", pos)) != -1:
        end = text.find("-->", start + 4)
        if end == -1:
            break  # no "-->" after this opener, so none after any later one either
        out.append(text[pos:start])
        pos = end + 3
    out.append(text[pos:])
    return "".join(out)


def load_txt(path: Path, data: bytes) -> Parsed:
    warnings: list[str] = []
    meta, body = split_front_matter(decode_text(path, data, warnings))
    return Parsed(split_plain_text(body), meta, warnings=warnings)


def load_md(path: Path, data: bytes) -> Parsed:
    warnings: list[str] = []
    meta, body = split_front_matter(decode_text(path, data, warnings))
    body = strip_html_comments(body)
    blocks = [Block(strip_markdown_inline(b.text), b.kind, b.page) for b in split_plain_text(body, markdown=True)]
    if "title" not in meta:
        first_heading = next((b.text for b in blocks if b.kind == "heading"), "")
        if first_heading:
            meta["title"] = first_heading
    return Parsed(blocks, meta, warnings=warnings)
