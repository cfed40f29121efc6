"""Answers on SQuAD 2.0 articles: whole Wikipedia articles as documents, answerable and unanswerable questions.

    python -m evals.squad /work/data/squad/dev-v2.0.json --index DIR [--articles 16] [--per-article 15]
                          [--passages 0,1000] [--out evals/out] [--no-langchain]

The file is CS224N's dev-v2.0.json (github:chrischute/squad, data/dev-v2.0.json; see evals/datasets.md). The first
`--articles` articles, in file order, are each written as one .txt document (its paragraphs joined by a blank line,
so that splitting matters) into DIR/docs, and ingested from there. Per article, `--per-article` answerable and as
many unanswerable (`is_impossible`) questions are kept, the first by sha1 of the question id (asking all ~5,900 takes
too long on two cores). Reported by `evals.answers`: stated = one of the reference answers in the answer's text;
cited_gold and hit@5 = a passage of the right article holding the reference's sentence (`sentence_window`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from evals.answers import Question, common_arguments, run, sentence_window


def doc_name(title: str) -> str:
    """A file name for an article: lower case, hyphens.

    >>> doc_name("1973_oil_crisis"), doc_name("Huguenot")
    ('1973-oil-crisis.txt', 'huguenot.txt')
    """
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") + ".txt"


def article_text(article: dict) -> str:
    """The article's paragraphs, in order, a blank line between them."""
    return "\n\n".join(p["context"].strip() for p in article["paragraphs"]) + "\n"


def _order(qid: str) -> str:
    return hashlib.sha1(qid.encode("utf-8")).hexdigest()


def questions_of(article: dict, per_article: int | None) -> list[Question]:
    """The article's questions as `Question`s: `per_article` answerable and as many unanswerable, by sha1 of the id
    (all of them when `per_article` is None)."""
    doc = doc_name(article["title"])
    answerable, unanswerable = [], []
    for para in article["paragraphs"]:
        context = para["context"]
        for qa in para["qas"]:
            if qa.get("is_impossible"):
                plausible = [a["text"] for a in qa.get("plausible_answers", [])]
                unanswerable.append(
                    Question(qa["id"], qa["question"], doc, False, set="squad", extra={"plausible": plausible})
                )
                continue
            texts = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
            windows = tuple(
                dict.fromkeys(sentence_window(context, a["answer_start"], a["text"]) for a in qa["answers"])
            )
            answerable.append(Question(qa["id"], qa["question"], doc, True, (texts,), windows=windows, set="squad"))
    pick = (lambda qs: sorted(qs, key=lambda q: _order(q.id))[:per_article]) if per_article else (lambda qs: qs)
    return pick(answerable) + pick(unanswerable)


def prepare(dev: str | Path, docs: str | Path, articles: int, per_article: int | None) -> list[Question]:
    """Write the first `articles` articles into `docs` (only when their text changed) and return their questions."""
    data = json.loads(Path(dev).read_text(encoding="utf-8"))["data"][:articles]
    docs = Path(docs)
    docs.mkdir(parents=True, exist_ok=True)
    questions: list[Question] = []
    for article in data:
        path, text = docs / doc_name(article["title"]), article_text(article)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        questions += questions_of(article, per_article)
    return questions


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Answer-level evaluation on SQuAD 2.0 articles")
    parser.add_argument("dev", type=Path, help="dev-v2.0.json")
    parser.add_argument("--articles", type=int, default=16)
    parser.add_argument(
        "--per-article",
        type=int,
        default=15,
        help="answerable (and as many unanswerable) questions per article; 0 for all",
    )
    parser.add_argument("--docs", type=Path, default=None, help="where the articles are written (default INDEX/docs)")
    common_arguments(parser)
    args = parser.parse_args(argv)
    docs = args.docs or args.index / "docs"
    questions = prepare(args.dev, docs, args.articles, args.per_article or None)
    command = "python -m evals.squad " + " ".join(sys.argv[1:] if argv is None else argv)
    run(
        args.name or "answers-squad",
        f"Answers on SQuAD 2.0: {args.articles} articles, {len(questions)} questions",
        docs,
        args.index,
        questions,
        args.passages,
        args.out,
        args.langchain,
        command,
        notes="stated: one of the reference answers in the answer's text; cited gold / hit@5: a passage of the "
        "right article holding the reference's sentence (at most 25 words around the answer).",
    )


if __name__ == "__main__":
    main()
