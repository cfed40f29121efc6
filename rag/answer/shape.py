"""The order of an answer's quoted sentences: what a reader needs first, and nothing that leans on a missing sentence.

- `with_referents`: a sentence whose subject is a pronoun or a pointing word ("It describes instead …",
  "They comprised …", "These figures …") is quoted right after the sentence before it in its paragraph, which
  it points to; alone it says nothing a reader can check.
- `named_first`: a question that names a document by the words of its title or kind ("What does the commentary
  recommend?", "according to the digest") gets that document's own sentences first, before other documents'
  sentences about it.

Positions are indices into the answerer's candidate list; a candidate's previous sentence of the same paragraph
is the candidate just before it (`rag.answer.extractive` lists a paragraph's sentences in order).

Not handled: a pronoun whose referent is two sentences back, or in another paragraph (a heading, a list's lead-in).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from rag.answer.question import DOCUMENT_KIND
from rag.answer.ranker import Candidate

# A subject that points outside its sentence: a personal pronoun, or a demonstrative with or without its noun.
_POINTING = re.compile(r"^\W*(?:it|its|they|their|them|he|she|his|her|this|these|that|those|such)\b", re.IGNORECASE)


def points_back(sentence: str) -> bool:
    """Whether a sentence opens with a word that points to an earlier one.

    >>> points_back("It describes instead a fractured world."), points_back("These customs figures come from one source.")
    (True, True)
    >>> points_back("Italy raised tariffs."), points_back("The EU set duties; it later cut them.")
    (False, False)
    """
    return bool(_POINTING.match(sentence))


def with_referents(candidates: Sequence[Candidate], chosen: list[int]) -> list[int]:
    """`chosen` with the previous sentence of its paragraph put right before each sentence that points back to it
    (moved there when it was quoted later, added when it was not).

    >>> from rag.documents import Hit, Paragraph
    >>> h = Hit(Paragraph("d", 1, "A plan. It works."), 1.0, 1)
    >>> cs = [Candidate(h, 0, "A plan."), Candidate(h, 1, "It works.", "A plan.")]
    >>> with_referents(cs, [1]), with_referents(cs, [1, 0]), with_referents(cs, [0, 1])
    ([0, 1], [0, 1], [0, 1])
    """
    out: list[int] = []
    for i in chosen:
        if i in out:
            continue
        c = candidates[i]
        if c.index > 0 and i > 0 and points_back(c.text) and candidates[i - 1].hit is c.hit:
            # the referent may itself point back ("It … . They …"): walk up to a sentence that does not
            chain = [i - 1]
            while candidates[chain[-1]].index > 0 and points_back(candidates[chain[-1]].text):
                chain.append(chain[-1] - 1)
            out += [j for j in reversed(chain) if j not in out]
        out.append(i)
    return out


def named_document(question: str, contexts: Mapping[str, str]) -> set[str]:
    """The documents a question names by a kind word ("the commentary", "the digest") and the words before it
    ("the Caixin piece"), where those words are in the document's own description (title, kind, file name); empty
    when it names none, or when every document fits (the words tell none apart).

    >>> ctx = {"caixin-commentary": "China's Carmakers caixin-commentary", "briefing-a": "Trade briefing-a"}
    >>> named_document("What does the commentary recommend?", ctx), named_document("What does it say?", ctx)
    ({'caixin-commentary'}, set())
    """
    found: set[str] = set()
    for m in DOCUMENT_KIND.finditer(question):
        words = [w.lower() for w in re.findall(r"[\w’'-]+", m.group(0))]
        words = [w for w in words if w not in {"the", "this", "that", "these", "its"}]
        kind = re.sub(r"s$", "", words[-1])
        names = words[:-1]  # "the Caixin piece": the name says which, whatever the kind word
        found |= {
            doc
            for doc, text in contexts.items()
            if (kind in text.lower() or names) and all(w in text.lower() for w in names)
        }
    return found if len(found) < len(contexts) else set()


def named_first(candidates: Sequence[Candidate], chosen: list[int], named: set[str]) -> list[int]:
    """`chosen` with the named documents' sentences first, each group in its own order."""
    if not named:
        return chosen
    own = [i for i in chosen if candidates[i].hit.paragraph.doc_id in named]
    return own + [i for i in chosen if i not in own]
