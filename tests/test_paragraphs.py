from rag.cite.markers import format_marker, parse_markers, strip_markers
from rag.documents import Paragraph
from rag.load.paragraphs import Block, extract_source_paras, number_paragraphs, split_plain_text
from rag.passages import make_passages
from rag.sentences import split_sentences


def kinds_and_texts(blocks):
    return [(b.kind, b.text) for b in blocks]


def test_one_paragraph_per_line_text_keeps_each_line():
    long = "This line is one whole paragraph of a saved web page and it runs on for quite a while. " * 2
    text = f"{long}\n{long.replace('one', 'another')}\n"
    blocks = split_plain_text(text)
    assert len(blocks) == 2
    assert blocks[1].text.startswith("This line is another whole paragraph")


def test_hard_wrapped_paragraphs_are_joined_and_blank_lines_separate():
    text = "Exports rose sharply in 2023\nand again in 2024, the\nassociation said.\n\nA second paragraph.\n"
    assert kinds_and_texts(split_plain_text(text)) == [
        ("para", "Exports rose sharply in 2023 and again in 2024, the association said."),
        ("para", "A second paragraph."),
    ]


def test_markdown_headings_lists_and_tables():
    text = (
        "# Title\n\nIntro paragraph.\n\n## Section\n\n- first item\n- second item\n  continued\n\n"
        "| Year | Exports |\n|---|---|\n| 2023 | 4.91 million |\n"
    )
    assert kinds_and_texts(split_plain_text(text, markdown=True)) == [
        ("heading", "Title"),
        ("para", "Intro paragraph."),
        ("heading", "Section"),
        ("item", "first item"),
        ("item", "second item continued"),
        ("table", "2023 — Exports: 4.91 million"),  # one table, one paragraph, with its structure
    ]
    table = split_plain_text(text, markdown=True)[-1].table
    assert table.header == (("Year", "Exports"),) and table.rows == (("2023", "4.91 million"),)


def test_source_markers_become_metadata_and_leave_the_text():
    text, refs = extract_source_paras("Targeting large markets matters [para. 7][para. 8][para. 9].")
    assert text == "Targeting large markets matters."
    assert refs == (7, 8, 9)
    assert extract_source_paras("A range [paras. 3-5].")[1] == (3, 4, 5)


def test_numbering_carries_headings_and_skips_empty_blocks():
    paras = number_paragraphs(
        "d", [Block("Intro", "heading"), Block("  "), Block("One [para. 2]."), Block("Two.", "item")]
    )
    assert [(p.para, p.heading, p.text, p.source_paras) for p in paras] == [
        (1, "Intro", "One.", (2,)),
        (2, "Intro", "Two.", ()),
    ]


def test_sentences_respect_abbreviations_and_decimals():
    assert split_sentences("The U.S. market is 16 million. The EU sells 12.5 million cars. Dr. Li agreed.") == [
        "The U.S. market is 16 million.",
        "The EU sells 12.5 million cars.",
        "Dr. Li agreed.",
    ]
    assert split_sentences("") == []
    assert split_sentences("A rose [a paras. 2 and 3]. B fell.") == ["A rose [a paras. 2 and 3].", "B fell."]


def test_long_paragraph_is_cut_into_sentence_windows_with_its_number():
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(10))
    passages = make_passages([Paragraph("d", 4, text)], max_words=20)
    assert len(passages) > 1
    assert {(c.para_start, c.para_end) for c in passages} == {(4, 4)}
    assert all(len(c.text.split()) <= 21 for c in passages)
    # every sentence survives in some window
    assert all(any(s in c.text for c in passages) for s in split_sentences(text))


def test_marker_grammar_round_trips():
    marker = format_marker("caixin-commentary", [5, 4])
    assert marker == "[caixin-commentary para. 4, 5]"
    parsed = parse_markers(f"Exports grew {marker}.")
    assert [(m.doc_id, m.paras) for m in parsed] == [("caixin-commentary", (4, 5))]
    assert strip_markers(f"Exports grew {marker}.") == "Exports grew."
