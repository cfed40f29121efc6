"""Pathological inputs for the adversarial tests, built at test time so the repository stays small.

Each builder returns bytes. The PDFs are written by hand (objects, xref, trailer) because the
point is a structure no well-behaved writer produces: pages that share one content stream, a
flate stream that inflates a thousandfold, a content stream past pypdf's parsing limit.
"""

from __future__ import annotations

import zlib


def raw_pdf(
    page_contents: list[int],
    streams: dict[int, bytes],
    title: str = "Pathological",
    flate_times: int = 1,
    declared_length: int | None = None,
) -> bytes:
    """A PDF whose page i draws content stream object `page_contents[i]`; `streams` maps object
    numbers (10 to 19) to uncompressed content, stored with /FlateDecode (applied `flate_times`)."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: f"<< /Title ({title}) >>".encode(),
    }
    kids = []
    for i, content in enumerate(page_contents):
        num = 20 + i
        kids.append(f"{num} 0 R")
        objects[num] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content} 0 R "
            f"/Resources << /Font << /F1 3 0 R >> >> >>"
        ).encode()
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    for num, data in streams.items():
        packed = data
        for _ in range(flate_times):
            packed = zlib.compress(packed, 9)
        filters = b"[" + b" ".join([b"/FlateDecode"] * flate_times) + b"]"
        length = len(packed) if declared_length is None else declared_length
        objects[num] = b"<< /Length %d /Filter %s >>\nstream\n" % (length, filters) + packed + b"\nendstream"
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n" % num + objects[num] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n" % size + b"0000000000 65535 f \n"
    for num in range(1, size):
        out += (b"%010d 00000 n \n" % offsets[num]) if num in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info 4 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size, xref)
    return bytes(out)


def text_ops(line: str, y: int = 720) -> bytes:
    return f"BT /F1 12 Tf 72 {y} Td ({line}) Tj ET\n".encode()


def shared_stream_pdf(pages: int, path_ops: int) -> bytes:
    """Every page draws the same content stream: one line of text and `path_ops` tiny path operators."""
    content = text_ops("Every page shares this one content stream.") + b"0 0 m\n" * path_ops
    return raw_pdf([10] * pages, {10: content})


def limit_pdf() -> bytes:
    """A content stream declaring a /Length past pypdf's cap (75 MB): pypdf raises LimitReachedError."""
    return raw_pdf([10], {10: text_ops("A stream that claims to be huge.")}, declared_length=80_000_000)


def token_limit_pdf(elements: int = 2_100_000) -> bytes:
    """A content stream with more operands than pypdf parses (2 million): LimitReachedError after seconds."""
    return raw_pdf([10], {10: text_ops("Too many operators follow.") + b"0 0 m\n" * (elements // 3 + 1)})


def flate_bomb_pdf(inflated: int = 200_000_000) -> bytes:
    """About 1 KB, flate-compressed twice, that inflates to `inflated` bytes (past pypdf's 75 MB cap)."""
    return raw_pdf([10], {10: text_ops("A bomb follows.") + b" " * inflated}, flate_times=2)


def good_pdf(text: str = "A good PDF paragraph about exports, which ends properly.") -> bytes:
    return raw_pdf([10], {10: text_ops(text)}, title="Good PDF")


# The small files kept in tests/pathological/ (regenerate with `python -m tests.pathological.hostile_files`).
# Giant ones (a multi-megabyte one-line file) are made at test time instead.
FILES = {
    "unclosed-comments.md": lambda: b"# Unclosed comments\n\n" + b"<!-- a <!-- b\n" * 2000,
    "underscores.md": lambda: b"# Underscores\n\n" + b"_a " * 10000,
    "abbreviations.txt": lambda: b"e.g. A " * 5000,
    "deep-nesting.html": lambda: b"<html><body>" + b"<div>" * 2000 + b"<p>x</p>" * 2000,
    "unclosed-tags.html": lambda: b"<html><body><p>Text before the tags.</p>" + b"<a href='" * 2000,
    "marker-range.txt": lambda: b"A paragraph citing a huge range of the article [paras. 1-100000000].\n",
    "shared-stream.pdf": lambda: shared_stream_pdf(8, 50_000),
    "flate-bomb.pdf": lambda: flate_bomb_pdf(),
    "limit-reached.pdf": lambda: limit_pdf(),
    "good.md": lambda: b"# Good\n\nA well-formed paragraph about car exports rose in 2023.\n",
    "good.pdf": lambda: good_pdf(),
}


if __name__ == "__main__":
    from pathlib import Path

    here = Path(__file__).resolve().parent
    for name, make in FILES.items():
        (here / name).write_bytes(make())
        print(f"{name}: {(here / name).stat().st_size:,} bytes")
