"""Cut paragraphs into the chunks that are embedded.

A chunk never crosses a paragraph boundary, so every hit names whole paragraphs. A paragraph
longer than `max_words` is cut into overlapping windows of whole sentences, each keeping the
paragraph's number. Not handled: a single sentence longer than `max_words` stays whole (the
encoder truncates it at its 256-token limit); it is bounded all the same, since a loaded
paragraph holds at most `Limits.max_paragraph_chars` characters (2,000 by default).
"""

from __future__ import annotations

from rag.documents import Chunk, Paragraph
from rag.errors import BadArgument
from rag.sentences import split_sentences

# all-MiniLM-L6-v2 truncates at 256 word pieces, about 190 English words.
DEFAULT_MAX_WORDS = 180


def chunk_paragraphs(paragraphs: list[Paragraph], max_words: int = DEFAULT_MAX_WORDS) -> list[Chunk]:
    """
    >>> from rag.documents import Paragraph
    >>> p = Paragraph("d", 3, "One two three. Four five six. Seven eight.")
    >>> [c.text for c in chunk_paragraphs([p], max_words=6)]
    ['One two three. Four five six.', 'Four five six. Seven eight.']
    """
    if max_words < 1:
        raise BadArgument(f"max_words must be greater than 0. Currently, max_words is {max_words}")
    chunks: list[Chunk] = []
    for p in paragraphs:
        for i, text in enumerate(_windows(p.text, max_words)):
            chunks.append(Chunk(f"{p.doc_id}:{p.para}:{i}", p.doc_id, p.para, p.para, text))
    return chunks


def _windows(text: str, max_words: int) -> list[str]:
    if len(text.split()) <= max_words:
        return [text]
    sentences = split_sentences(text)
    windows: list[str] = []
    start = 0
    while start < len(sentences):
        end, words = start, 0
        while end < len(sentences) and (end == start or words + len(sentences[end].split()) <= max_words):
            words += len(sentences[end].split())
            end += 1
        windows.append(" ".join(sentences[start:end]))
        if end >= len(sentences):
            break
        # Overlap by one sentence so a fact that straddles a window edge is whole in one of them.
        start = end - 1 if end - 1 > start else end
    return windows
