"""HTML pages: title and `<meta>` tags, then block elements in reading order.

Page furniture (`nav`, `header`, `footer`, `aside`, `script`, `style`, forms) is dropped.
Each `<p>`, list item, heading, `<blockquote>` and `<pre>` becomes one block, and each table one block with its
structure (a `Table`: header labels, rows, caption), as PDF tables are read.
Not handled: text placed by JavaScript, CSS-hidden text, frames.

Our walk over the tree is linear: one pass finds the outermost furniture and the outermost
blocks, where asking each element for all its ancestors was quadratic on deep nesting, each
table's header row is read once, and a row's cells are its outermost ones, so that a cell nested
in a cell (`<td>a<td>b`, unclosed) is read once, as text of the outer one. The standard
library's `html.parser` (before Python 3.11.13, 3.12.11, 3.13.4) rescans the rest of the page
from every unterminated `<...` at the end of the page; `_neutralise_tail` turns those into text
first, which is what the parser made of them.
"""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, Tag

from rag.documents import Table
from rag.load.base import Parsed, decode_text
from rag.load.paragraphs import Block
from rag.load.table_text import table_text

_DROP = [
    "script",
    "style",
    "noscript",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "template",
    "svg",
    "iframe",
    "button",
]
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = _HEADINGS | {"p", "li", "blockquote", "pre", "tr", "dt", "dd", "figcaption", "caption"}
_CELLS = {"td", "th"}


def load_html(path: Path, data: bytes) -> Parsed:
    warnings: list[str] = []
    soup = BeautifulSoup(_neutralise_tail(decode_text(path, data, warnings)), "html.parser")
    meta: dict[str, str] = {}
    if soup.title and soup.title.get_text(strip=True):
        meta["title"] = soup.title.get_text(" ", strip=True)
    for tag in soup.find_all("meta"):
        name = (tag.get("name") or tag.get("property") or "").lower().removeprefix("og:")
        if name in {"kind", "date", "author", "publisher", "description", "title"} and tag.get("content"):
            meta.setdefault(name, tag["content"].strip())
    for tag in _outermost(soup, set(_DROP)):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    blocks: list[Block] = []
    # A block's text includes the blocks inside it, so only the outermost are read; when the root
    # itself sits inside a block (a <main> in a <li>), every block under it is inner.
    inside_block = any(parent.name in _BLOCKS for parent in root.parents if isinstance(parent, Tag))
    headers: dict[int, list[str]] = {}  # id(table) -> its header labels, read once per table
    rows: list[list[str]] = []  # the body rows of the table being read
    current: Tag | None = None

    def flush() -> None:
        if current is not None and rows and max(len(r) for r in rows) >= 2:
            blocks.append(_table_block(current, headers, rows))
        else:  # a table of one column lays text out: its rows are paragraphs
            blocks.extend(Block(" ".join(r)) for r in rows)
        rows.clear()

    for el, table in [] if inside_block else _outermost(root, _BLOCKS, track="table"):
        if el.name == "tr":
            if table is not current:
                flush()
                current = table
            row = _row(el, table, headers)
            if row is not None:
                rows.append(row)
            continue
        flush()
        current = None
        if el.name in _HEADINGS:
            blocks.append(Block(el.get_text(" ", strip=True), "heading"))
        elif el.name != "caption":  # a table's caption is read with its table
            blocks.append(Block(el.get_text(" ", strip=True), "item" if el.name == "li" else "para"))
    flush()
    if not blocks:  # a page of bare text without block tags
        blocks = [Block(line) for line in root.get_text("\n").splitlines() if line.strip()]
    if "title" not in meta:
        h1 = soup.find("h1")
        if h1:
            meta["title"] = h1.get_text(" ", strip=True)
    return Parsed(blocks, meta, warnings=warnings)


def _neutralise_tail(html: str) -> str:
    """Escape each `<` after the page's last `>`: no tag, comment or declaration can end there.

    `html.parser` gives those characters back as text anyway, but only after rescanning the rest
    of the page from each of them (`"<a href='" * n` took seconds).

    >>> _neutralise_tail("<p>a</p><!--<b")
    '<p>a</p>&lt;!--&lt;b'
    """
    last = html.rfind(">")
    tail = html[last + 1 :]
    return html[: last + 1] + tail.replace("<", "&lt;") if "<" in tail else html


def _outermost(root: Tag, names: set[str], track: str | None = None):
    """Descendants of `root` named in `names` that have no such ancestor below `root`, in document
    order (as `find_all` lists them); with `track`, each comes with its nearest `track` ancestor."""
    above = None
    if track:  # found once for the root, never once per element
        above = root if root.name == track else root.find_parent(track)
    stack: list[tuple[Tag, Tag | None]] = [
        (child, above) for child in reversed(root.contents) if isinstance(child, Tag)
    ]
    while stack:
        el, nearest = stack.pop()
        if el.name in names:
            yield (el, nearest) if track else el
            continue
        if track and el.name == track:
            nearest = el
        stack.extend((child, nearest) for child in reversed(el.contents) if isinstance(child, Tag))


def _row(tr: Tag, table: Tag | None, headers: dict[int, list[str]]) -> list[str] | None:
    """A body row's cells, or None for the header row (its labels are read once per table, into `headers`)."""
    # The row's own cells: a cell inside a cell (a nested table, or `<td>a<td>b` that html.parser nests
    # unclosed) is text of its outer cell, read once with it. Every cell found below the row, each read
    # whole, read the text of n nested cells n times: quadratic time and text.
    found = list(_outermost(tr, _CELLS))
    cells = [c.get_text(" ", strip=True) for c in found]
    if found and all(c.name == "th" for c in found):
        return None
    if table is not None and id(table) not in headers:
        header_row = table.find("tr")
        labels = [c for c in _outermost(header_row, _CELLS) if c.name == "th"] if header_row else []
        headers[id(table)] = [c.get_text(" ", strip=True) for c in labels]
    return cells


def _table_block(table: Tag, headers: dict[int, list[str]], rows: list[list[str]]) -> Block:
    """One table, one block with its structure (`rag.documents.Table`), as PDF tables are read: its caption is its
    `<caption>` (the heading above it is the paragraph's heading anyway); a header row of `<th>` cells labels the
    columns."""
    header = headers.get(id(table), [])
    width = max([len(header)] + [len(r) for r in rows])
    pad = lambda cells: tuple(cells) + ("",) * (width - len(cells))  # noqa: E731
    caption_tag = table.find("caption")
    caption = caption_tag.get_text(" ", strip=True) if caption_tag else ""
    structure = Table((pad(header),) if header else (), tuple(pad(r) for r in rows if any(r)), (), caption)
    return Block(table_text(structure), "table", None, structure)
