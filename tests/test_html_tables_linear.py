"""HTML tables are read in linear work, and a file may produce only so much text and so many paragraphs
(issue 22, finding 5: `"<table><tr><td>a" * n` took 3.9 s at n=2,000 and over 300 s at 20,000).

No test here is timed: linearity is pinned by counting the work (how many text nodes are read) and
the text produced, and the big input by finishing inside the existing per-file budget. The timings
are in bench/html_tables.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bs4.element import Tag

from rag.errors import OverBudget
from rag.load import LoadedFile, load_file
from rag.load.html_page import load_html
from rag.load.limits import Limits
from rag.load.worker import parse_files


def nested_cells(n: int) -> bytes:
    return b"<table><tr><td>a" * n


def strings_read(monkeypatch, data: bytes) -> tuple[int, int]:
    """(text nodes read by bs4 while loading `data`, characters of text produced)."""
    count = 0
    original = Tag._all_strings

    def counting(self, *args, **kwargs):
        nonlocal count
        for s in original(self, *args, **kwargs):
            count += 1
            yield s

    monkeypatch.setattr(Tag, "_all_strings", counting)
    parsed = load_html(Path("x.html"), data)
    monkeypatch.setattr(Tag, "_all_strings", original)
    return count, sum(len(b.text) for b in parsed.blocks)


@pytest.mark.parametrize("n", [500, 2000])
def test_nested_unclosed_cells_read_each_text_node_a_bounded_number_of_times(monkeypatch, n):
    reads, chars = strings_read(monkeypatch, nested_cells(n))
    assert reads <= 4 * n, f"{reads:,} text nodes read for {n:,} cells: each is read again per enclosing cell"
    assert chars <= len(nested_cells(n)), f"{chars:,} characters of text from {len(nested_cells(n)):,} bytes"


def test_the_text_of_nested_cells_is_each_cell_once():
    parsed = load_html(Path("x.html"), nested_cells(5))
    assert [b.text for b in parsed.blocks] == ["a a a a a"]


def test_a_nested_table_is_text_of_its_cell_read_once_under_the_header_labels():
    page = (
        b"<table><tr><th>Year</th><th>Exports</th></tr>"
        b"<tr><td>2023</td><td>4.91 million <table><tr><td>of which NEV</td></tr></table></td></tr></table>"
    )
    assert [b.text for b in load_html(Path("x.html"), page).blocks] == ["2023 — Exports: 4.91 million of which NEV"]


def test_20000_nested_cells_finish_inside_the_per_file_budget_as_bounded_paragraphs(tmp_path):
    path = tmp_path / "cells.html"
    path.write_bytes(nested_cells(20_000))  # 320 KB; over 300 s before the fix
    [result] = parse_files([(path, "cells")], Limits(seconds_per_file=60, workers=1))
    assert isinstance(result, LoadedFile), result
    texts = [p.text for p in result.paragraphs]
    assert max(map(len, texts)) <= Limits().max_paragraph_chars
    assert sum(map(len, texts)) <= path.stat().st_size and len(texts) <= 25


def test_a_file_over_the_paragraph_budget_is_refused_naming_the_limit_and_its_variable(tmp_path):
    path = tmp_path / "many.md"
    path.write_text("".join(f"Paragraph number {i} says one thing.\n\n" for i in range(50)))
    assert len(load_file(path, limits=Limits(max_paragraphs=50)).paragraphs) == 50
    with pytest.raises(OverBudget, match="51 paragraphs, over the limit of 50; raise PARACITE_MAX_PARAGRAPHS") as err:
        path.write_text(path.read_text() + "One more.\n")
        load_file(path, limits=Limits(max_paragraphs=50))
    assert err.value.limit == "max_paragraphs" and err.value.env == "PARACITE_MAX_PARAGRAPHS"


def test_the_paragraph_budget_comes_from_the_environment():
    assert Limits.from_env({"PARACITE_MAX_PARAGRAPHS": "7"}).max_paragraphs == 7
    assert Limits().max_paragraphs == 50_000
