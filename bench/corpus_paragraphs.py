"""Dump the shipped corpus's paragraphs as JSON lines, to compare parser changes before and after.

Each line: doc_id, title, pages, and every paragraph's (para, page, heading, source_paras, text).
No model is loaded.

Example usage:

    PYTHONPATH=$PWD .venv/bin/python bench/corpus_paragraphs.py corpus/ > /tmp/after.jsonl
    diff /tmp/before.jsonl /tmp/after.jsonl && echo same
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from rag.load import load_file


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")
    for path in sorted(folder.iterdir()):
        loaded = load_file(path)
        doc = loaded.document
        print(
            json.dumps(
                {
                    "doc_id": doc.doc_id,
                    "title": doc.title,
                    "kind": doc.kind,
                    "pages": doc.pages,
                    "meta": doc.meta,
                    "paragraphs": [asdict(p) for p in loaded.paragraphs],
                },
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    main()
