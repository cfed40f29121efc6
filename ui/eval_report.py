"""The Evals page: the latest `rag eval` report (figures, plots, worst questions), and a button to run one.

The run is `evals.runner.run_eval`, the same function as `rag eval`; this page only draws its
results. Tables are dataframes, so answer text from documents is never rendered as Markdown.
Running evals is an admin's: the button is offered to admins only, and a run checks the role again
(`app.audit.require`, which logs a refusal) and is logged.
"""

from __future__ import annotations

import json
from datetime import datetime

import streamlit as st

from app import audit
from app.auth import Role
from ui import render, state


def main() -> None:
    state.keep_settings()
    principal = state.signed_in()
    settings = state.sidebar_settings(principal)
    st.title("Evals")
    out = state.eval_out_dir()
    engine = state.get_engine()
    st.caption(
        f"Gold set: {render.md_escape(str(state.eval_set_path()))} · report folder: "
        f"{render.md_escape(str(out))} · runs use the sidebar's retrieval mode and top-k with the "
        "extractive answerer (`rag eval --llm` evaluates an LLM from the terminal)."
    )
    if principal.role < Role.ADMIN:
        st.caption(f"You are a {principal.role}: running evals needs the admin role.")
    elif engine is not None and st.button("Run evals", icon=":material/play_arrow:", key="run-evals"):
        _run(engine, settings, out, principal)
    _show(out)


def _run(engine, settings, out, principal) -> None:
    from evals.runner import run_eval
    from rag.errors import RagError

    try:
        audit.require(state.audit_path(), principal, Role.ADMIN, "run evals")
    except RagError as e:
        state.show_error(e)
        return
    bar = st.progress(0.0, text="Answering the gold questions…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / total, text=f"Answered {done} of {total} questions")

    try:
        run_eval(
            engine, state.eval_set_path(), out, top_k=settings.top_k, mode=settings.mode, progress=progress, cache=True
        )
    except RagError as e:
        bar.empty()
        state.show_error(e)
        return
    bar.empty()
    audit.record(state.audit_path(), principal, "run evals", detail=f"mode {settings.mode}, top-k {settings.top_k}")
    st.success("Eval finished; the report below is new.", icon=":material/check_circle:")


def _show(out) -> None:
    path = out / "results.json"
    if not path.exists():
        st.info(
            "No eval report yet. Run one with the button above, or `rag eval` in a terminal.", icon=":material/info:"
        )
        return
    results = json.loads(path.read_text(encoding="utf-8"))
    config, summary = results["config"], results["summary"]
    when = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    st.caption(
        render.md_escape(
            f"Run of {when}: {summary['questions']} questions, mode {config.get('mode')}, top-k {config.get('top_k')}, "
            f"answerer {config.get('answerer')}, {config.get('seconds')} s"
        )
    )
    left, right = st.columns([1, 2])
    with left:
        figures = [{"metric": k, "value": v} for k, v in summary.items() if isinstance(v, (int, float))]
        for stage, q in summary.get("latency_ms", {}).items():
            figures.append({"metric": f"latency {stage} p50 (ms)", "value": q.get("p50")})
            figures.append({"metric": f"latency {stage} p95 (ms)", "value": q.get("p95")})
        st.dataframe(figures, hide_index=True, key="eval-summary")
    with right:
        for name in ("metrics.png", "latency.png"):
            if (out / name).exists():
                st.image(str(out / name))
    rows = {r["id"]: r for r in results.get("rows", [])}
    worst = [rows[i] for i in results.get("worst", []) if i in rows]
    if worst:
        st.subheader("Worst 10 questions")
        st.dataframe(
            [
                {
                    "id": r["id"],
                    "kind": r["kind"],
                    "question": r["question"],
                    "what went wrong": "; ".join(r.get("problems", [])) or "partly right",
                }
                for r in worst
            ],
            hide_index=True,
            key="eval-worst",
        )
    if (out / "compare.png").exists():
        st.subheader("Ablations (rag eval --compare)")
        st.image(str(out / "compare.png"))


main()
