"""The Streamlit app through AppTest: ask, open a citation, abstain, upload, delete, escape.

One copy of the session's corpus index serves the whole module; the app shares the session's
already-loaded embedder (same process), so the model loads once.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.transcript import new_conversation_id

APP = str(Path(__file__).resolve().parent.parent / "ui" / "main.py")
TIMEOUT = 120

EVIL = (
    b"Quarterly memo\n\n"
    b"The Quokkafield gigafactory <script>alert('pwned')</script> will produce 40 GWh of cells from 2026, "
    b"said **the board** in [a link](javascript:alert(1)) and :red[loud text] for $5.\n"
)
ZEPHYR = b"The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"


@pytest.fixture(scope="module")
def app_env(tmp_path_factory, corpus_index, embedder):
    import ui.state

    root = tmp_path_factory.mktemp("ui-app")
    shutil.copytree(corpus_index, root / "index")
    (root / "corpus").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("RAG_INDEX", str(root / "index"))
    mp.setenv("RAG_CORPUS", str(root / "corpus"))
    mp.setattr(ui.state, "EMBEDDER_FACTORY", lambda: embedder)
    yield root
    mp.undo()


def new_app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def chips(at: AppTest):
    return [b for b in at.button if (b.key or "").startswith("chip-")]


def panel(at: AppTest) -> str:
    bodies = [h.value for h in at.html if 'class="pc-panel"' in h.value]
    assert bodies, "no citation panel open"
    return bodies[-1]


def shown(elements) -> list[str]:
    """Texts of alerts as a reader sees them (without the Markdown escapes)."""
    return [e.value.replace("\\", "") for e in elements]


def test_ask_gives_an_answer_with_citation_chips(app_env):
    at = ask(new_app(), "How many vehicles did China export in 2023?")
    assistant = at.chat_message[-1]
    assert assistant.name == "assistant"
    message = at.session_state["messages"][-1]
    assert not message.abstained and message.citations
    # Citations are small numbers, each the place of its source in the numbered list under the answer.
    labels = [b.label for b in chips(at)]
    assert labels and all(re.fullmatch(r"\\\[\d+\\\]", label) for label in labels), labels
    sources = [b for b in at.button if (b.key or "").startswith("src-")]
    cited = {c.label for c in message.citations}
    assert len(sources) >= len(cited) and {int(label[2:-2]) for label in labels} <= set(range(1, len(sources) + 1))
    for c in message.citations:  # only cited sources listed under the answer, each a button that opens it
        assert any(c.label.replace(" para. ", " · para. ") in b.label.replace("\\", "") for b in sources), c.label
    also = [e for e in at.expander if e.label.startswith("Also relevant")]
    assert also and not also[0].proto.expanded
    # Hovering a number shows the quoted sentence, not the paragraph's first lines.
    first = message.claims[0].citations[0]
    assert chips(at)[0].help.replace("\\", "")[:30] == " ".join(first.quote.split())[:30]
    # Scores are for the curious: under "Details", closed, and nowhere else.
    details = [e for e in at.expander if e.label == "Details"]
    assert details and not details[0].proto.expanded
    assert not [h for h in at.html if re.search(r"score \d", h.value) and "Retrieved paragraphs" not in h.value]


def test_citation_opens_a_panel_with_the_paragraph(app_env):
    at = ask(new_app(), "How many vehicles did China export in 2023?")
    message = at.session_state["messages"][-1]
    cite = message.claims[0].citations[0]
    chips(at)[0].click().run()
    assert not at.exception, at.exception
    body = panel(at)
    from ui.render import esc

    assert f"<mark>{esc(cite.quote)}</mark>" in body
    assert esc(cite.title) in body and f"para. {cite.para}" in body
    assert 'class="pc-ctx"' in body  # a neighbouring paragraph, dimmed
    # Citations persist across reruns: they live in session state with the message.
    at.run()
    assert at.session_state["messages"][-1].citations == message.citations
    assert [b.label for b in chips(at)]


def test_out_of_scope_question_abstains_with_closest_paragraphs(app_env):
    at = ask(new_app(), "Who won the 2022 World Cup?")
    message = at.session_state["messages"][-1]
    assert message.abstained
    assert any("Not found in the documents" in m.value for m in at.chat_message[-1].markdown)
    assert not chips(at)
    assert [b for b in at.button if (b.key or "").startswith("near-")]


def test_changed_document_is_flagged_not_silently_shown(app_env):
    at = ask(new_app(), "How many vehicles did China export in 2023?")
    from dataclasses import replace

    from rag.documents import DocRef

    message = at.session_state["messages"][-1]
    # As if every cited document had been re-ingested with other content since.
    at.session_state["messages"][-1] = replace(
        message, documents={k: DocRef(d.doc_id, d.title, "0" * 64) for k, d in message.documents.items()}
    )
    at.run()
    assert all(b.label.endswith("(changed)") for b in chips(at))
    chips(at)[0].click().run()
    body = panel(at)
    assert "has changed since this answer was given" in body and 'class="pc-ctx"' not in body


def test_download_exports_markdown_with_paragraph_text(app_env):
    at = ask(new_app(), "How many vehicles did China export in 2023?")
    from rag.present import conversation_markdown, md_text

    md = conversation_markdown(at.session_state["messages"])
    cite = at.session_state["messages"][-1].citations[0]
    assert md_text(cite.text.splitlines()[0]) in md
    assert at.download_button(key="download")


def upload(at: AppTest, files: list[tuple[str, bytes, str]]) -> AppTest:
    at.switch_page("library.py").run()
    at.file_uploader[0].set_value(files).run()
    at.button(key="add").click().run()
    assert not at.exception, at.exception
    return at


def test_upload_then_ask_about_it(app_env):
    at = upload(new_app(), [("zephyrine-memo.txt", ZEPHYR, "text/plain")])
    assert any("zephyrine-memo" in s for s in shown(at.success)), shown(at.error)
    assert "reader?doc=zephyrine-memo" in list(at.dataframe[0].value["read"])  # a link to it in the Reader
    at.switch_page("chat.py").run()
    ask(at, "When will the Zephyrine battery plant open?")
    message = at.session_state["messages"][-1]
    assert not message.abstained
    assert any(c.doc_id == "zephyrine-memo" for c in message.citations)


def test_malicious_name_and_html_in_a_document_are_harmless(app_env):
    at = upload(new_app(), [("../../quokka memo.txt", EVIL, "text/plain"), ("empty.txt", b"   \n", "text/plain")])
    assert (app_env / "corpus" / "quokka-memo.txt").is_file()
    assert not (app_env.parent / "quokka-memo.txt").exists() and not (app_env / "quokka-memo.txt").exists()
    assert any(e.startswith("empty.txt: ") for e in shown(at.error)), shown(at.error)  # per-file error
    # Types off the allowlist never reach the page: the uploader itself refuses them
    # (and app.corpus refuses them again; see tests/test_corpus.py).
    assert sorted(at.file_uploader[0].allowed_type) == [".htm", ".html", ".markdown", ".md", ".pdf", ".txt"]

    at.switch_page("chat.py").run()
    ask(at, "How many GWh will the Quokkafield gigafactory produce?")
    message = at.session_state["messages"][-1]
    assert not message.abstained
    sentence = next(m.value for m in at.chat_message[-1].markdown if "Quokkafield" in m.value)  # after the lead line
    assert "\\<script\\>" in sentence and "<script>" not in sentence.replace("\\<script\\>", "")
    assert "\\*\\*the board\\*\\*" in sentence and "\\:red\\[" in sentence and "\\$5" in sentence
    chips(at)[0].click().run()
    body = panel(at)
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in body and "<script>" not in body

    at.switch_page("reader.py")
    at.query_params["doc"] = "quokka-memo"
    at.query_params["para"] = "1"
    at.run()
    reader = [h.value for h in at.html if "pc-reader" in h.value][0]
    assert 'id="para-1"' in reader and "&lt;script&gt;" in reader and "<script>" not in reader


def test_reader_lands_on_the_cited_paragraph(app_env):
    at = new_app()
    at.switch_page("reader.py")
    at.query_params["doc"] = "caixin-commentary"
    at.query_params["para"] = "4"
    at.run()
    assert not at.exception, at.exception
    reader = [h.value for h in at.html if "pc-reader" in h.value][0]
    assert 'class="pc-para pc-target" id="para-4"' in reader
    assert any("scrollIntoView" in h.value and "para-4" in h.value for h in at.html)


def test_delete_a_document(app_env):
    at = upload(new_app(), [("to-delete.txt", b"A short note about deleting things.\n", "text/plain")])
    at.selectbox(key="delete-doc").select("to-delete").run()
    at.checkbox(key="delete-sure").check().run()
    at.button(key="delete").click().run()
    assert not at.exception, at.exception
    assert any("Deleted to-delete" in s for s in shown(at.info)), shown(at.error)
    assert not (app_env / "corpus" / "to-delete.txt").exists()
    assert "reader?doc=to-delete" not in list(at.dataframe[0].value["read"])


def test_follow_up_uses_the_conversation(app_env):
    at = ask(new_app(), "How many vehicles did China export in 2023?")
    ask(at, "And in 2024?")
    message = at.session_state["messages"][-1]
    assert message.question == "And in 2024?"
    assert message.standalone_question != "And in 2024?"
    assert len(at.chat_message) == 4


def test_llm_answer_streams_and_shows_a_support_badge_per_sentence(app_env, monkeypatch, tmp_path):
    """The generative path through the page, with LangChain's fake chat model standing in for the LLM:
    one sentence cites a retrieved paragraph, one cites an invented paragraph."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    import app.chat_models

    reply = (
        "China's vehicle exports hit a record 4.91 million in 2023, according to CAAM "
        "[briefing-china-vehicle-exports para. 7]. Exports will triple next year [made-up-report para. 3]."
    )
    monkeypatch.setattr(
        app.chat_models,
        "make_chat_model",
        lambda spec, base_url=None, **kw: GenericFakeChatModel(messages=iter([AIMessage(reply)])),
    )
    (tmp_path / "backends.toml").write_text('[backends.local]\nkind = "local"\n')  # the operator offers it
    monkeypatch.setenv("RAG_BACKENDS", str(tmp_path / "backends.toml"))
    at = new_app()
    at.selectbox(key="answerer").set_value("local").run()
    ask(at, "How many vehicles did China export in 2023?")
    message = at.session_state["messages"][-1]
    assert message.answerer == "local"
    assert [c.support.value for c in message.claims] == ["supported", "unsupported"]
    assert message.claims[1].citations == ()  # the invented citation was removed
    badges = [m.value for m in at.markdown if "-badge[" in m.value]  # st.badge renders as Markdown
    assert badges == [":green-badge[supported]", ":red-badge[unsupported]"]
    captions = " ".join(shown(at.caption))
    assert "1 of 2 sentences supported" in captions and "made-up-report para. 3" in captions


def test_evals_page_runs_an_eval_with_progress_and_shows_the_report(app_env, monkeypatch, tmp_path):
    gold = Path(__file__).resolve().parent.parent / "evals" / "gold" / "commentary.jsonl"
    small = tmp_path / "small.jsonl"
    lines = gold.read_text(encoding="utf-8").splitlines()
    small.write_text("\n".join(lines[:4] + [line for line in lines if '"answerable": false' in line][:1]) + "\n")
    monkeypatch.setenv("RAG_EVAL_SET", str(small))
    monkeypatch.setenv("RAG_EVAL_OUT", str(tmp_path / "out"))
    at = new_app()
    at.switch_page("eval_report.py").run()
    assert not at.exception, at.exception
    assert any("No eval report yet" in i.value for i in at.info), [i.value for i in at.info]
    at.button(key="run-evals").click().run()
    assert not at.exception, at.exception
    assert any("Eval finished" in s.value for s in at.success)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["summary"]["questions"] == 5 and len(results["worst"]) == 5
    assert (tmp_path / "out" / "metrics.png").exists() and (tmp_path / "out" / "latency.png").exists()
    summary, worst = (d.value for d in at.dataframe)
    assert "hit@5" in list(summary["metric"])
    assert set(worst["id"]) == {r["id"] for r in results["rows"]}


def test_conversation_survives_a_page_reload(app_env):
    at = ask(new_app(), "What three fronts should the industry strategy focus on?")
    cid = at.query_params["c"]
    before = at.session_state["messages"]
    reloaded = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a reload starts a new session
    reloaded.query_params["c"] = cid
    reloaded.run()
    assert not reloaded.exception, reloaded.exception
    assert reloaded.session_state["messages"] == before
    assert [m.name for m in reloaded.chat_message] == ["user", "assistant"]
    assert {b.label for b in chips(reloaded)} == {b.label for b in chips(at)}


# --- with sign-in on ([auth] in the secrets): roles decide what each page offers ---------------------------------

AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "0" * 64,
    "client_id": "paracite",
    "client_secret": "not-a-secret",
    "server_metadata_url": "http://localhost:9/.well-known/openid-configuration",
}
TEAM_ROLES = (
    '[admin]\nemails = ["ana@team.example"]\n[editor]\nemails = ["ed@team.example"]\n'
    '[reader]\ndomains = ["team.example"]\n'
)


def team_app(email: str | None, page: str | None = None, cid: str | None = None) -> AppTest:
    """The app with an [auth] section, as `email` signed in (None: nobody signed in)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.secrets["auth"] = AUTH
    at.user = (
        {
            "is_logged_in": True,
            "iss": "https://idp.team.example",
            "sub": email.split("@")[0],
            "email": email,
            "email_verified": True,
        }
        if email
        else {"is_logged_in": False}
    )
    if cid:
        at.query_params["c"] = cid
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture()
def roles(app_env, monkeypatch, tmp_path):
    (tmp_path / "roles.toml").write_text(TEAM_ROLES)
    monkeypatch.setenv("RAG_ROLES", str(tmp_path / "roles.toml"))
    monkeypatch.setenv("RAG_CONVERSATIONS", str(tmp_path / "conversations"))
    monkeypatch.setenv("RAG_AUDIT_LOG", str(tmp_path / "audit.jsonl"))
    return tmp_path


def test_signed_out_visitors_and_accounts_without_a_role_see_no_page(roles):
    at = team_app(None)
    assert [b.label for b in at.button] == ["Sign in"] and not at.chat_input and not at.dataframe
    at = team_app("mallory@elsewhere.org")
    assert [t.value for t in at.title] == ["No access"] and not at.chat_input
    assert "has no role here" in shown(at.warning)[0] and [b.label for b in at.button] == ["Sign out"]
    (roles / "roles.toml").write_text("[editor\n")  # a broken roles file lets nobody in
    at = team_app("ana@team.example")
    assert [t.value for t in at.title] == ["No access"] and "roles file of this server has an error" in shown(
        at.warning
    )[0]


def test_each_role_gets_its_own_library_and_evals_page(roles):
    reader = team_app("rita@team.example", "library.py")
    assert not reader.file_uploader and not [b for b in reader.button if b.key in ("add", "delete")]
    assert any("You are a reader" in i for i in shown(reader.info))
    assert "rita@team.example" in " ".join(shown(reader.sidebar.caption))
    assert not any("one local user" in c for c in shown(reader.caption))
    editor = team_app("ed@team.example", "library.py")
    assert editor.file_uploader and editor.button(key="delete")
    assert not [b for b in team_app("ed@team.example", "eval_report.py").button if b.key == "run-evals"]
    assert team_app("ana@team.example", "eval_report.py").button(key="run-evals")


def test_a_conversation_is_its_owners_only_and_can_be_renamed_and_deleted(roles):
    from app.transcript import list_conversations, save_conversation, user_folder

    conversations = roles / "conversations"
    eds = new_conversation_id()
    save_conversation(user_folder(conversations, "https://idp.team.example#ed"), eds, ["Ed's private question"])
    at = team_app("rita@team.example", cid=eds)
    assert any("belongs to another user" in e for e in shown(at.error))
    assert at.query_params["c"] != eds and at.session_state["messages"] == []
    assert not any("private question" in m.value for m in at.markdown)
    refused = [json.loads(line) for line in (roles / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["outcome"], e["email"]) for e in refused] == [
        ("open conversation", "refused", "rita@team.example")
    ]

    ritas_folder = user_folder(conversations, "https://idp.team.example#rita")
    mine = new_conversation_id()
    save_conversation(ritas_folder, mine, ["Rita's question"])
    at = team_app("rita@team.example", cid=mine)
    assert at.session_state["messages"] == ["Rita's question"]
    listed = [b for b in at.sidebar.button if (b.key or "").startswith("open-")]
    # Each with the date of its last answer; the open one is marked (a filled button), not disabled.
    assert [(b.label.split("  \n")[0], b.proto.type, b.disabled) for b in listed] == [
        ("Rita's question", "secondary", False)
    ]
    assert re.search(r":gray\[(today \d\d:\d\d|\d\d \w{3} \d{4})\]", listed[0].label), listed[0].label
    other = new_conversation_id()
    save_conversation(ritas_folder, other, ["Rita's other question"])
    at.run()
    at.button(key=f"open-{other}").click().run()
    assert at.query_params["c"] == other and at.session_state["messages"] == ["Rita's other question"]
    at.button(key=f"open-{mine}").click().run()
    assert at.session_state["messages"] == ["Rita's question"]
    at.text_input(key=f"title-{mine}").set_value("Exports").run()
    at.button(key="rename-conversation").click().run()
    assert {c.title for c in list_conversations(ritas_folder)} == {"Exports", "Rita's other question"}
    at.button(key="delete-conversation").click().run()
    assert not at.exception, at.exception
    assert [c.conversation_id for c in list_conversations(ritas_folder)] == [other]
    assert at.query_params["c"] not in (mine, other)


def test_a_question_over_the_apis_cap_is_refused_with_a_message(app_env, monkeypatch, tmp_path):
    from app.limits import QUESTION_MAX_CHARS

    monkeypatch.setenv("RAG_CONVERSATIONS", str(tmp_path / "conversations"))
    at = ask(new_app(), "How many vehicles did China export in 2023? " + "x" * QUESTION_MAX_CHARS)
    assert any("the limit is 2,000" in e for e in shown(at.error))
    assert at.session_state["messages"] == [] and not list((tmp_path / "conversations").rglob("*.json"))
    ask(at, "How many vehicles did China export in 2023?")  # the chat goes on
    assert len(at.session_state["messages"]) == 2 and not at.error


def test_the_history_sent_for_rewriting_is_capped(app_env, monkeypatch, tmp_path):
    from app.limits import QUESTION_MAX_CHARS
    from app.transcript import save_conversation

    # A conversation saved before the cap, with an earlier question of 19,999 characters.
    monkeypatch.setenv("RAG_CONVERSATIONS", str(tmp_path / "conversations"))
    cid = new_conversation_id()
    save_conversation(
        tmp_path / "conversations",
        cid,
        ["How many vehicles did Japanese makers build overseas in 2023? " + "y" * 19_937],
    )
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["c"] = cid
    at = ask(at.run(), "And what about Korea?")
    answer = at.session_state["messages"][-1]
    assert "Korea" in answer.standalone_question
    assert len(answer.standalone_question) <= QUESTION_MAX_CHARS + len(" and Korea?")
