"""Every gold question's `rag ask --json` object, timings removed, one per line: a behaviour fingerprint.

Run before and after a refactor that must not change answers, then diff the two files:

    python scripts/gold_answers.py --index /tmp/idx > before.jsonl
    ... change the code ...
    python scripts/gold_answers.py --index /tmp/idx > after.jsonl && cmp before.jsonl after.jsonl

Not handled: LLM answerers (the extractive default only), timings (dropped, they differ every run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True, help="an index folder built by `rag ingest corpus/`")
    parser.add_argument("--gold", default="evals/gold", help="folder of gold *.jsonl files")
    args = parser.parse_args()
    from rag.engine import Engine
    from rag.present import to_json

    engine = Engine.load(args.index)
    for path in sorted(Path(args.gold).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            answer = engine.ask(item["question"], history=item.get("history"))
            data = to_json(answer)
            data.pop("timings_ms", None)
            print(json.dumps({"id": item["id"], "answer": data}, ensure_ascii=False, sort_keys=True))


if __name__ == "__main__":
    main()
