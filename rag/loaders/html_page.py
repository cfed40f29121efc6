"""HTML pages: title and `<meta>` tags, then block elements in reading order.

Page furniture (`nav`, `header`, `footer`, `aside`, `script`, `style`, forms) is dropped.
Each `<p>`, list item, heading, table row, `<blockquote>` and `<pre>` becomes one block.
Not handled: text placed by JavaScript, CSS-hidden text, frames.
"""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, Tag

from rag.loaders.base import Parsed, decode_text
from rag.paragraphs import Block, table_row_text

_DROP = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template", "svg", "iframe", "button"]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {"p", "li", "blockquote", "pre", "tr", "dt", "dd", "figcaption", "caption"}


def load_html(path: Path, data: bytes) -> Parsed:
    warnings: list[str] = []
    soup = BeautifulSoup(decode_text(path, data, warnings), "html.parser")
    meta: dict[str, str] = {}
    if soup.title and soup.title.get_text(strip=True):
        meta["title"] = soup.title.get_text(" ", strip=True)
    for tag in soup.find_all("meta"):
        name = (tag.get("name") or tag.get("property") or "").lower().removeprefix("og:")
        if name in {"kind", "date", "author", "publisher", "description", "title"} and tag.get("content"):
            meta.setdefault(name, tag["content"].strip())
    for tag in soup.find_all(_DROP):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    blocks: list[Block] = []
    for el in root.find_all(_BLOCKS):
        if any(parent.name in _BLOCKS for parent in el.parents if isinstance(parent, Tag)):
            continue  # its text is part of the enclosing block
        if el.name == "tr":
            blocks.extend(_row(el))
        elif el.name in _HEADINGS:
            blocks.append(Block(el.get_text(" ", strip=True), "heading"))
        else:
            blocks.append(Block(el.get_text(" ", strip=True), "item" if el.name == "li" else "para"))
    if not blocks:  # a page of bare text without block tags
        blocks = [Block(line) for line in root.get_text("\n").splitlines() if line.strip()]
    if "title" not in meta:
        h1 = soup.find("h1")
        if h1:
            meta["title"] = h1.get_text(" ", strip=True)
    return Parsed(blocks, meta, warnings=warnings)


def _row(tr: Tag) -> list[Block]:
    cells = [c.get_text(" ", strip=True) for c in tr.find_all(["td", "th"])]
    if all(c.name == "th" for c in tr.find_all(["td", "th"])):
        return []  # header row: its labels are folded into each body row
    table = tr.find_parent("table")
    header_row = table.find("tr") if table else None
    header = [c.get_text(" ", strip=True) for c in header_row.find_all("th")] if header_row else []
    if header and header_row is not tr and len(header) == len(cells):
        return [Block(table_row_text(header, cells))]
    return [Block(" ".join(cells))]
