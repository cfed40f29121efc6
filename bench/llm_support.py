"""Share of the local model's answer sentences that verification marks supported, on gold questions.

Prints the model's load time, tokens per second, per-question badges, and the overall share.
It measures the model's raw answers (before any extractive fallback).

Example usage:

    HF_HUB_OFFLINE=1 .venv/bin/python bench/llm_support.py --index /tmp/index -n 15
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from app.chat_models import make_chat_model
from rag.answer.llm import LlmAnswerer
from rag.cite.verify import verify_answer
from rag.engine import Engine
from rag.prompts import answer_messages
from rag.query import Query

GOLD = Path(__file__).resolve().parent.parent / "evals" / "gold"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", default=".rag/index")
    ap.add_argument("-n", type=int, default=15, help="answerable gold questions, taken in file order")
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=80)
    args = ap.parse_args()

    engine = Engine.load(args.index)
    model = make_chat_model("local", max_tokens=args.max_new_tokens)
    print(f"load: {model.load():.1f}s")
    gold = [
        json.loads(line)
        for f in sorted(GOLD.glob("*.jsonl"))
        if f.name != "followups.jsonl"
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    gold = [g for g in gold if g["answerable"]][: args.n]
    answerer = LlmAnswerer(model, engine.embedder, engine.titles, name="local")
    totals = {"supported": 0, "partial": 0, "unsupported": 0, "invented": 0, "refused": 0}
    tokens, seconds = 0, 0.0
    for g in gold:
        hits = engine.retriever.search(g["question"], top_k=args.top_k)
        t0 = time.perf_counter()
        msg = model.invoke(answer_messages(g["question"], hits))
        dt = time.perf_counter() - t0
        n = msg.usage_metadata["output_tokens"]
        tokens, seconds = tokens + n, seconds + dt
        v = verify_answer(str(msg.content), hits, engine.embedder, engine.titles)
        for k in ("supported", "partial", "unsupported"):
            totals[k] += getattr(v.counts, k)
        totals["invented"] += len(v.invented)
        totals["refused"] += v.refused
        final = answerer.finish(Query.plain(g["question"]), hits, str(msg.content))
        print(
            f"\n[{g['id']}] {g['question']}  ({n} tokens, {dt:.1f}s, {v.counts.summary()}, answered by {final.answerer})"
        )
        for c in v.claims:
            cites = ", ".join(f"{x.doc_id} para. {x.para}" for x in c.citations) or "no valid citation"
            print(f"   [{c.support.value}{'' if c.score is None else f' {c.score:.2f}'}] {c.text}  <{cites}>")
        if v.invented:
            print(f"   removed invented: {', '.join(v.invented)}")
    m = totals["supported"] + totals["partial"] + totals["unsupported"]
    print(
        f"\n{len(gold)} questions, {m} sentences: supported {totals['supported']}, partial {totals['partial']}, "
        f"unsupported {totals['unsupported']}; share supported {totals['supported'] / m if m else float('nan'):.1%}; "
        f"invented markers removed {totals['invented']}; refusals {totals['refused']}"
    )
    print(
        f"generation: {tokens} tokens in {seconds:.1f}s = {tokens / seconds:.1f} tokens/s (prompt processing included)"
    )


if __name__ == "__main__":
    main()
