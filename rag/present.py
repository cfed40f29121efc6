"""How an `Answer` is shown and saved: JSON (versioned, and read back), text, Markdown and the UI's view.

Everything that prints, saves or draws an answer goes through here (the CLI, the UI, the
Markdown export, the evals), so a new `Answer` field is added in this one module. Citation
labels come from `rag.documents.label` and nowhere else.

JSON shape (`FORMAT` v`VERSION`), one object per answer:

    {"format", "version", "question", "standalone_question", "answer" (text with markers), "abstained",
     "answerer", "lead": {"span", "context", "cite"} | null,
     "disagreements": [{"measure", "period", "values": [{"value", "cite"}]}],
     "fallback": {"reason", "answerer", "detail"} | null, "notes", "support": {counts},
     "claims": [{"text", "support", "score", "cites": [label, ...], "quotes": [the quoted sentence per cite]}],
     "citations": [{"label", "doc_id", "para", "page", "title", "quote" (its first), "text", "source_paras", "sha256"}],
     "retrieved": [{"label", "doc_id", "para", "page", "heading", "title", "text", "source_paras", "score",
                    "scores_by_retriever", "sha256", "cited"}],
     "timings_ms", "signals"}

`from_json` reads it back (and the v1 records of earlier saved conversations). Not handled:
drawing (the UI's job: `ui.render` turns an `AnswerView` into widgets and HTML).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from rag.cite.markers import render_claims
from rag.documents import (
    Answer,
    Citation,
    Disagreement,
    DisagreementValue,
    DocRef,
    Fallback,
    FallbackReason,
    Hit,
    Lead,
    Paragraph,
    SentenceClaim,
    Support,
    label,
)
from rag.errors import BadArgument

FORMAT = "paracite-answer"
VERSION = 2

# CommonMark's backslash-escapable marks that mean something, plus Streamlit's own: ":" (emoji,
# :color[...] and :material/...: directives), "$" (LaTeX) and "&" (entities).
MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$&=])")


def md_escape(text: Any) -> str:
    """Text that Markdown shows exactly as typed: no links, images, HTML or emphasis from a document.

    >>> print(md_escape("**bold** <b>x</b> $5"))
    \\*\\*bold\\*\\* \\<b\\>x\\</b\\> \\$5
    """
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


# For the export, which people also read raw: only what can make a link, an image, HTML, emphasis or code.
_MD_EXPORT_SPECIAL = re.compile(r"([\\`*_\[\]<>&!|~])")
_MD_LINE_START = re.compile(r"^(\s*)(?:([#>+=-])|(\d+)([.)]))")


def md_text(text: Any) -> str:
    """Text for the Markdown export: links, images, HTML and emphasis are escaped, sentences stay readable.

    >>> print(md_text('<img src=x onerror=alert(1)> [x](javascript:alert(1)) 4.91 million'))
    \\<img src=x onerror=alert(1)\\> \\[x\\](javascript:alert(1)) 4.91 million
    """
    flat = _MD_EXPORT_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return _MD_LINE_START.sub(
        lambda m: m.group(1) + (f"\\{m.group(2)}" if m.group(2) else f"{m.group(3)}\\{m.group(4)}"), flat
    )


def where(page: int | None, source_paras: Iterable[int] | None = None) -> str:
    """
    >>> where(3, [7, 8])
    'page 3 · original article para. 7, 8'
    """
    parts = [f"page {page}"] if page else []
    if source_paras:
        parts.append(f"original article para. {', '.join(map(str, source_paras))}")
    return " · ".join(parts)


def support_counts(answer: Answer) -> dict[str, int]:
    claims = [] if answer.abstained else answer.claims
    counts = {s.value: sum(c.support is s for c in claims) for s in (Support.SUPPORTED, Support.PARTIAL)}
    counts["unsupported"] = len(claims) - counts["supported"] - counts["partial"]
    counts["sentences"] = len(claims)
    return counts


def is_verified(answer: Answer) -> bool:
    """Generated sentences carry a verification badge; quoted (extractive) ones are supported by construction."""
    return not answer.answerer.startswith("extractive")


# ---- JSON ---------------------------------------------------------------------------------------------------------


def _cite_json(c: Citation, documents: dict[str, DocRef]) -> dict[str, Any]:
    ref = documents.get(c.doc_id)
    return {
        "label": c.label,
        "doc_id": c.doc_id,
        "para": c.para,
        "page": c.page,
        "title": c.title,
        "quote": c.quote,
        "text": c.text,
        "source_paras": list(c.source_paras),
        "sha256": ref.sha256 if ref else "",
    }


def to_json(answer: Answer) -> dict[str, Any]:
    """The answer as a JSON-ready dict: `rag ask --json`, saved conversations and eval rows all use it."""
    docs = answer.documents
    cited = {c.label for c in answer.citations}
    return {
        "format": FORMAT,
        "version": VERSION,
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "answer": render_claims(answer.claims),
        "abstained": answer.abstained,
        "answerer": answer.answerer,
        "lead": None
        if answer.lead is None
        else {"span": answer.lead.span, "context": answer.lead.context, "cite": answer.lead.citation.label},
        "disagreements": [
            {
                "measure": d.measure,
                "period": d.period,
                "values": [{"value": v.value, "cite": v.citation.label} for v in d.values],
            }
            for d in answer.disagreements
        ],
        "fallback": None
        if answer.fallback is None
        else {
            "reason": answer.fallback.reason.value,
            "answerer": answer.fallback.answerer,
            "detail": answer.fallback.detail,
        },
        "notes": list(answer.notes),
        "support": support_counts(answer),
        # Two sentences may quote one paragraph: each claim keeps its own quote, to highlight the right sentence.
        "claims": [
            {
                "text": cl.text,
                "support": cl.support.value,
                "score": cl.score,
                "cites": [c.label for c in cl.citations],
                "quotes": [c.quote for c in cl.citations],
            }
            for cl in answer.claims
        ],
        "citations": [_cite_json(c, docs) for c in _all_citations(answer)],
        "retrieved": [
            {
                "label": h.paragraph.label,
                "doc_id": h.paragraph.doc_id,
                "para": h.paragraph.para,
                "page": h.paragraph.page,
                "heading": h.paragraph.heading,
                "title": docs[h.paragraph.doc_id].title if h.paragraph.doc_id in docs else "",
                "text": h.paragraph.text,
                "source_paras": list(h.paragraph.source_paras),
                "score": float(h.score),
                "scores_by_retriever": {k: float(v) for k, v in h.scores_by_retriever.items()},
                "sha256": docs[h.paragraph.doc_id].sha256 if h.paragraph.doc_id in docs else "",
                "cited": h.paragraph.label in cited,
            }
            for h in answer.retrieved
        ],
        "timings_ms": {k: round(float(v), 1) for k, v in answer.timings_ms.items()},
        "signals": {k: float(v) for k, v in answer.signals.items()},
    }


def _all_citations(answer: Answer) -> list[Citation]:
    """Claim citations, then any the lead or a disagreement adds, each paragraph once."""
    seen = {c.label: c for c in answer.citations}
    extra = [answer.lead.citation] if answer.lead else []
    extra += [v.citation for d in answer.disagreements for v in d.values]
    for c in extra:
        seen.setdefault(c.label, c)
    return list(seen.values())


def from_json(data: dict[str, Any]) -> Answer:
    """An `Answer` from `to_json`'s dict (or a v1 record of an earlier saved conversation)."""
    version = data.get("version")
    if version == 1:
        data = _upgrade_v1(data)
    elif version != VERSION:
        raise BadArgument(
            f"answer record version {version!r} is not one this paracite reads (it reads 1 and {VERSION})"
        )
    cites = {
        c["label"]: Citation(
            c["doc_id"],
            int(c["para"]),
            c.get("title", ""),
            c.get("quote", ""),
            c.get("text", ""),
            c.get("page"),
            tuple(c.get("source_paras", ())),
        )
        for c in data.get("citations", [])
    }
    documents = {
        c["doc_id"]: DocRef(c["doc_id"], c.get("title", ""), c.get("sha256", ""))
        for c in [*data.get("retrieved", []), *data.get("citations", [])]
    }
    claims = tuple(
        SentenceClaim(
            cl["text"],
            _claim_citations(cl, cites),
            Support(cl.get("support", Support.UNCHECKED.value)),
            cl.get("score"),
        )
        for cl in data.get("claims", [])
    )
    retrieved = tuple(
        Hit(
            Paragraph(
                r["doc_id"],
                int(r["para"]),
                r.get("text", ""),
                r.get("page"),
                r.get("heading", ""),
                tuple(r.get("source_paras", ())),
            ),
            float(r.get("score", 0.0)),
            rank,
            dict(r.get("scores_by_retriever", {})),
        )
        for rank, r in enumerate(data.get("retrieved", []), start=1)
    )
    lead = data.get("lead")
    fallback = data.get("fallback")
    return Answer(
        question=data.get("question", ""),
        claims=claims,
        abstained=bool(data.get("abstained")),
        retrieved=retrieved,
        standalone_question=data.get("standalone_question", ""),
        timings_ms=dict(data.get("timings_ms", {})),
        answerer=data.get("answerer", "extractive"),
        notes=tuple(data.get("notes", ())),
        signals=dict(data.get("signals", {})),
        lead=Lead(lead["span"], cites[lead["cite"]], lead.get("context", ""))
        if lead and lead["cite"] in cites
        else None,
        disagreements=tuple(
            Disagreement(
                d["measure"],
                d["period"],
                tuple(DisagreementValue(v["value"], cites[v["cite"]]) for v in d["values"] if v["cite"] in cites),
            )
            for d in data.get("disagreements", [])
        ),
        fallback=Fallback(FallbackReason(fallback["reason"]), fallback["answerer"], fallback.get("detail", ""))
        if fallback
        else None,
        documents=documents,
    )


def _claim_citations(claim: dict[str, Any], cites: dict[str, Citation]) -> tuple[Citation, ...]:
    keys = claim.get("cites", [])
    quotes = claim.get("quotes") or [None] * len(keys)
    return tuple(replace(cites[k], quote=q) if q is not None else cites[k] for k, q in zip(keys, quotes) if k in cites)


def _upgrade_v1(record: dict[str, Any]) -> dict[str, Any]:
    """v1 kept citations as a dict keyed by label; v2 lists them, each with its label."""
    cites = [{**c, "label": key} for key, c in record.get("citations", {}).items()]
    retrieved = [{**r, "label": label(r["doc_id"], r["para"])} for r in record.get("retrieved", [])]
    return {**record, "version": VERSION, "citations": cites, "retrieved": retrieved}


# ---- text (the CLI) -----------------------------------------------------------------------------------------------


def lead_line(answer: Answer) -> str:
    """The lead as a person reads it: `4.91 million vehicles (CAAM, 2023) [doc para. 5]`, or ''."""
    if answer.lead is None:
        return ""
    context = f" ({answer.lead.context})" if answer.lead.context else ""
    return f"{answer.lead.span}{context} [{answer.lead.citation.label}]"


def disagreement_lines(answer: Answer) -> list[str]:
    """One line per disagreement: `Sources disagree on <measure> (<period>): v1 [cite] (title); v2 ...`."""
    out = []
    for d in answer.disagreements:
        period = f" ({d.period})" if d.period else ""
        values = "; ".join(f"{v.value} [{v.citation.label}] ({v.citation.title})" for v in d.values)
        out.append(f"Sources disagree on {d.measure or 'this figure'}{period}: {values}")
    return out


def fallback_warning(answer: Answer) -> str:
    """A one-line warning when the LLM could not be reached (the other fallback is explained in the notes)."""
    if answer.fallback and answer.fallback.reason is FallbackReason.UNREACHABLE:
        return answer.fallback.detail
    return ""


def to_text(answer: Answer) -> str:
    """The answer for a terminal: question, lead, sentences with markers, sources, notes."""
    lines = [f"Q: {answer.question}"]
    if answer.standalone_question and answer.standalone_question != answer.question:
        lines.append(f"   (searched as: {answer.standalone_question})")
    lines.append("")
    if answer.lead:
        lines += [f"A: {lead_line(answer)}", ""]
    lines += [render_claims(answer.claims), ""]
    if is_verified(answer) and not answer.abstained:
        lines.append("Sentences:")
        lines += [
            f"  [{c.support.value}{f' {c.score:.2f}' if c.score is not None else ''}] {c.text}" for c in answer.claims
        ]
        lines += [f"  ({answer.answerer})", ""]
    lines += disagreement_lines(answer)
    if answer.abstained:
        lines.append("Closest paragraphs:")
        for h in answer.retrieved[:3]:
            lines.append(f"  [{h.paragraph.label}] {h.paragraph.text[:160]}…")
    else:
        lines.append("Sources:")
        for c in answer.citations:
            extra = f", p. {c.page}" if c.page else ""
            refs = f" (original article para. {', '.join(map(str, c.source_paras))})" if c.source_paras else ""
            lines.append(f"  [{c.label}{extra}] {c.title}{refs}")
    for note in answer.notes:
        lines.append(f"Note: {note}")
    return "\n".join(lines) + "\n"


# ---- Markdown (the conversation export) ---------------------------------------------------------------------------


def to_markdown(answer: Answer) -> str:
    """One answer as Markdown. Every string from a document or a model is escaped, so a document's
    `<script>`, `<img onerror>` or `[x](javascript:…)` shows as text in any Markdown viewer."""
    out = ["## Answer", ""]
    if answer.lead:
        lead = answer.lead
        context = f" ({md_text(lead.context)})" if lead.context else ""
        out += [f"**{md_text(lead.span)}**{context} {_md_marker(lead.citation.label)}", ""]
    if answer.abstained:
        out += [md_text(answer.claims[0].text if answer.claims else ""), ""]
        closest = answer.retrieved[:3]
        if closest:
            out += ["Closest paragraphs:", ""]
            for h in closest:
                title = answer.documents.get(h.paragraph.doc_id)
                out += [f"- {_md_marker(h.paragraph.label)} {md_text(title.title if title else '')}", ""]
                out += _md_quote(h.paragraph.text) + [""]
        return "\n".join(out)
    verified = is_verified(answer)
    sentences = []
    for claim in answer.claims:
        markers = "".join(_md_marker(c.label) for c in claim.citations)
        badge = f" _({claim.support.value})_" if verified else ""
        sentences.append(f"{md_text(claim.text)} {markers}{badge}".strip())
    out += [" ".join(sentences), ""]
    out += [
        f"**Sources disagree:** {md_text(line.removeprefix('Sources disagree on '))}"
        for line in disagreement_lines(answer)
    ]
    if answer.disagreements:
        out.append("")
    if verified:
        c = support_counts(answer)
        out += [f"_{c['supported']} of {c['sentences']} sentences supported ({answer.answerer})._", ""]
    cites = _all_citations(answer)
    if cites:
        out += ["### Sources", ""]
        for c in cites:
            extra = where(c.page, c.source_paras)
            out += [f"**{_md_marker(c.label)}** {md_text(c.title)}{', ' + md_text(extra) if extra else ''}", ""]
            out += _md_quote(c.text) + [""]
    for note in answer.notes:
        out += [f"_Note: {md_text(note)}_", ""]
    return "\n".join(out)


def conversation_markdown(turns: Iterable[str | Answer], title: str = "paracite conversation") -> str:
    """A conversation (questions as strings, answers as `Answer`s) as one Markdown document.

    >>> print(conversation_markdown(["Q?"]).strip())
    # paracite conversation
    <BLANKLINE>
    ## Question
    <BLANKLINE>
    Q?
    """
    out = [f"# {md_text(title)}", ""]
    for turn in turns:
        if isinstance(turn, str):
            out += ["## Question", "", md_text(turn), ""]
        else:
            out += [to_markdown(turn), ""]
    return "\n".join(out).rstrip() + "\n"


def _md_marker(key: str) -> str:
    return f"\\[{md_text(key)}\\]"


def _md_quote(text: str) -> list[str]:
    return [f"> {md_text(line)}" if line.strip() else ">" for line in str(text).splitlines()] or [">"]


# ---- the UI's view ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimView:
    text: str
    citations: tuple[Citation, ...]
    badge: str  # the support verdict for generated sentences, '' for quotes


@dataclass(frozen=True)
class AnswerView:
    """What the chat page draws for one answer; `ui.render` turns it into widgets and HTML."""

    searched_as: str  # the rewritten question, when it differs from the one typed
    abstained: bool
    lead: Lead | None
    claims: tuple[ClaimView, ...]
    disagreements: tuple[str, ...]  # one readable line each
    sources: tuple[Citation, ...]
    others: tuple[Hit, ...]  # retrieved but not cited ("Also relevant"), or the closest ones after an abstention
    notes: tuple[str, ...]
    caption: str  # who answered, and how fast


def view(answer: Answer) -> AnswerView:
    cited = {c.label for c in _all_citations(answer)}
    searched = answer.standalone_question if answer.standalone_question != answer.question else ""
    total = answer.timings_ms.get("total")
    caption = f"{answer.answerer} · answered in {total / 1000:.2f} s" if total is not None else answer.answerer
    verified = is_verified(answer)
    if answer.abstained:
        return AnswerView(
            searched,
            True,
            None,
            tuple(ClaimView(c.text, (), "") for c in answer.claims),
            (),
            (),
            tuple(answer.retrieved[:3]),
            answer.notes,
            caption,
        )
    return AnswerView(
        searched,
        False,
        answer.lead,
        tuple(ClaimView(c.text, c.citations, c.support.value if verified else "") for c in answer.claims),
        tuple(line.removeprefix("Sources disagree on ") for line in disagreement_lines(answer)),
        tuple(_all_citations(answer)),
        tuple(h for h in answer.retrieved if h.paragraph.label not in cited),
        answer.notes,
        caption,
    )
