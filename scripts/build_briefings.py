"""Build the two PDF industry briefings in corpus/ from their Markdown sources.

Run from the repository root:

    .venv/bin/python scripts/build_briefings.py

Sources live in scripts/briefings/*.md, outside corpus/, so the ingester never reads the same
briefing twice. Each source has front matter (title, short_title, kind, date, publisher) and a
small Markdown subset: `#`/`##` headings, prose paragraphs (one per line or hard-wrapped, blank
lines between), `- ` bullets, one pipe table per block and a numbered `## Sources` list.

The PDFs exist to exercise the PDF loader, so they carry what real reports carry: a running
header and a "Page N of M" footer on every page, headings, left-aligned paragraphs that wrap
over many lines (at least one of them crossing a page break), a table and a bulleted list.
They use the core Helvetica font, so text is reduced to Latin-1 first; the Markdown sources
are plain ASCII, so this changes nothing in the prose that gold quotes are taken from.

Output is deterministic: the creation date is fixed from the briefing's date, so rebuilding
reproduces the same bytes with the same fpdf2 version. The script prints, per PDF, the page
count and each paragraph that starts on one page and ends on the next.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "scripts" / "briefings"
CORPUS = ROOT / "corpus"
BRIEFINGS = ("briefing-global-ev-market", "briefing-china-vehicle-exports")

BODY_SIZE = 11
LINE_H = 6.0
PARA_GAP = 3.5

_ASCII_MAP = {
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u2013": "-",
    "\u2014": "-",
    "\u2026": "...",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u20ac": "EUR ",
    "\u2022": "-",
}


def latin1_safe(text: str) -> str:
    """Replace typographic characters the core fonts lack; fail loudly on anything else."""
    for src, dst in _ASCII_MAP.items():
        text = text.replace(src, dst)
    text.encode("latin-1")  # raises on a character Helvetica cannot draw
    return text


@dataclass
class Source:
    meta: dict[str, str]
    title: str = ""
    blocks: list[tuple] = field(default_factory=list)  # (kind, payload)


def parse_source(path: Path) -> Source:
    text = path.read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n", text, re.S)
    if not m:
        raise ValueError(f"{path}: no front matter")
    meta = {}
    for line in m.group(1).splitlines():
        key, _, value = line.partition(":")
        meta[key.strip()] = value.strip().strip('"')
    src = Source(meta=meta)
    in_sources = False
    for raw in re.split(r"\n\s*\n", text[m.end() :]):
        lines = [ln.rstrip() for ln in raw.strip().splitlines() if ln.strip()]
        if not lines:
            continue
        first = lines[0]
        if first.startswith("# "):
            src.title = first[2:].strip()
            if len(lines) > 1:
                src.blocks.append(("meta", lines[1:]))
        elif first.startswith("Date:"):  # date line, kind line and compilation note
            src.blocks.append(("meta", lines))
        elif first.startswith("## "):
            heading = first[3:].strip()
            in_sources = heading.lower() == "sources"
            src.blocks.append(("heading", heading))
        elif first.startswith("|"):
            rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines]
            rows = [r for r in rows if not all(re.fullmatch(r":?-{2,}:?", c) for c in r)]
            src.blocks.append(("table", rows))
        elif first.startswith("- "):
            src.blocks.append(("bullets", [ln[2:].strip() for ln in lines]))
        elif re.match(r"^\d+\.\s", first):
            items = [re.sub(r"^\d+\.\s+", "", ln) for ln in lines]
            src.blocks.append(("sources" if in_sources else "numbered", items))
        else:
            src.blocks.append(("para", " ".join(ln.strip() for ln in lines)))
    if not src.title:
        raise ValueError(f"{path}: no '# ' title")
    return src


class BriefingPDF(FPDF):
    def __init__(self, short_title: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self.short_title = short_title

    def header(self) -> None:
        self.set_font("helvetica", "I", 8.5)
        self.set_text_color(90, 90, 90)
        self.cell(self.epw / 2, 5, latin1_safe(self.short_title), align="L")
        self.cell(self.epw / 2, 5, "paracite industry briefing", align="R", new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(160, 160, 160)
        self.line(self.l_margin, self.get_y() + 1, self.w - self.r_margin, self.get_y() + 1)
        self.ln(7)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("helvetica", "", 8.5)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="C")
        self.set_text_color(0, 0, 0)


def render(src: Source, out: Path) -> list[str]:
    """Write the PDF; return a note for each paragraph that spans a page break."""
    meta = src.meta
    pdf = BriefingPDF(meta.get("short_title", src.title))
    pdf.set_margins(left=25, top=18, right=25)
    pdf.set_auto_page_break(auto=True, margin=22)
    pdf.set_title(latin1_safe(src.title))
    pdf.set_subject(f"kind={meta['kind']}; date={meta['date']}")
    pdf.set_author(meta.get("publisher", "paracite research"))
    pdf.set_creator("scripts/build_briefings.py")
    pdf.set_keywords("briefing; paracite")
    year, month, day = (int(x) for x in meta["date"].split("-"))
    pdf.creation_date = datetime(year, month, day, 9, 0, 0, tzinfo=UTC)
    pdf.add_page()

    pdf.set_font("helvetica", "B", 17)
    pdf.multi_cell(0, 8, latin1_safe(src.title), align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    spans: list[str] = []
    for kind, payload in src.blocks:
        if kind == "meta":
            pdf.set_font("helvetica", "", 10)
            for line in payload:
                pdf.multi_cell(0, 6.5, latin1_safe(line), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(PARA_GAP)
        elif kind == "heading":
            if pdf.get_y() > pdf.page_break_trigger - 25:  # keep a heading with its text
                pdf.add_page()
            pdf.ln(2)
            pdf.set_font("helvetica", "B", 13)
            pdf.multi_cell(0, 7, latin1_safe(payload), align="L", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(1.5)
        elif kind == "para":
            pdf.set_font("helvetica", "", BODY_SIZE)
            # The page the first line lands on: multi_cell breaks before it if it does not fit.
            first = pdf.page_no() + (pdf.get_y() + LINE_H > pdf.page_break_trigger)
            pdf.multi_cell(0, LINE_H, latin1_safe(payload), align="L", new_x="LMARGIN", new_y="NEXT")
            if pdf.page_no() != first:
                spans.append(f"pages {first}-{pdf.page_no()}: {payload[:70]}...")
            pdf.ln(PARA_GAP)
        elif kind in ("bullets", "numbered", "sources"):
            size = BODY_SIZE if kind != "sources" else 9.5
            pdf.set_font("helvetica", "", size)
            for i, item in enumerate(payload, 1):
                mark = "-" if kind == "bullets" else f"{i}."
                pdf.set_x(pdf.l_margin + 3)
                pdf.cell(7, LINE_H if kind != "sources" else 5, mark)
                pdf.multi_cell(
                    pdf.epw - 10,
                    LINE_H if kind != "sources" else 5,
                    latin1_safe(item),
                    align="L",
                    new_x="LMARGIN",
                    new_y="NEXT",
                )
                pdf.ln(1.5)
            pdf.ln(PARA_GAP - 1.5)
        elif kind == "table":
            header, *rows = payload
            pdf.set_font("helvetica", "", 9.5)
            widths = {4: (64, 36, 40, 20), 3: (50, 55, 55)}.get(len(header))
            with pdf.table(
                col_widths=widths,
                text_align="LEFT",
                line_height=5.5,
                first_row_as_headings=True,
                headings_style=FontFace(emphasis="BOLD", fill_color=(225, 225, 225)),
                borders_layout="HORIZONTAL_LINES",
            ) as table:
                for row in (header, *rows):
                    table.row([latin1_safe(c) for c in row])
            pdf.ln(PARA_GAP + 1)
        else:
            raise ValueError(f"unknown block kind {kind}")
    out.write_bytes(bytes(pdf.output()))
    return spans


def main() -> int:
    for stem in BRIEFINGS:
        src = parse_source(SOURCES / f"{stem}.md")
        out = CORPUS / f"{stem}.pdf"
        spans = render(src, out)
        from pypdf import PdfReader

        pages = len(PdfReader(out).pages)
        print(f"{out.relative_to(ROOT)}: {pages} pages")
        for note in spans:
            print(f"  paragraph across a page break, {note}")
        if pages < 3 or not spans:
            print("  WARNING: expected at least 3 pages and one paragraph across a page break")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
