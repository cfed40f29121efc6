"""Saved conversations (app.transcript, and the chat page): private files, expiry and caps, and two tabs
on one conversation that never overwrite each other's turns."""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest

from app.transcript import (
    ConversationLimits,
    commit_conversation,
    conversation_path,
    load_conversation,
    new_conversation_id,
    prune_conversations,
    read_conversation,
    save_conversation,
)
from rag.errors import BadArgument, ConversationConflict

DAY = 86400


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _age(path: Path, days: float) -> None:
    old = time.time() - days * DAY
    os.utime(path, (old, old))


def test_files_and_their_folder_are_private(tmp_path):
    folder = tmp_path / "conversations"
    cid = new_conversation_id()
    path = save_conversation(folder, cid, ["What did China export?"])
    assert _mode(folder) == 0o700 and _mode(path) == 0o600
    assert not [p for p in folder.iterdir() if p.suffix == ".tmp"]
    # Files and a folder from before this rule are narrowed on the next save.
    older = conversation_path(folder, new_conversation_id())
    older.write_text(json.dumps({"version": 2, "messages": []}))
    os.chmod(older, 0o644)
    os.chmod(folder, 0o755)
    save_conversation(folder, cid, ["What did China export?", "And Korea?"])
    assert _mode(folder) == 0o700 and _mode(older) == 0o600 and _mode(path) == 0o600


def test_old_conversations_expire_and_are_pruned_on_save(tmp_path, monkeypatch):
    old, fresh = new_conversation_id(), new_conversation_id()
    save_conversation(tmp_path, old, ["an old question"])
    _age(conversation_path(tmp_path, old), 31)
    assert load_conversation(tmp_path, old) == []  # expired: not shown, even before it is pruned
    assert read_conversation(tmp_path, old).revision == 1  # a save on top of it is no conflict
    monkeypatch.setenv("RAG_CONVERSATION_DAYS", "40")
    assert load_conversation(tmp_path, old) == ["an old question"]  # the age is configurable
    monkeypatch.delenv("RAG_CONVERSATION_DAYS")
    save_conversation(tmp_path, fresh, ["a new question"])
    assert not conversation_path(tmp_path, old).exists() and conversation_path(tmp_path, fresh).exists()


def test_the_count_and_size_caps_drop_the_least_recently_saved(tmp_path):
    ids = [new_conversation_id() for _ in range(5)]
    limits = ConversationLimits(max_count=3)
    for n, cid in enumerate(ids):
        save_conversation(tmp_path, cid, [f"question {n}"], limits=limits)
        _age(conversation_path(tmp_path, cid), 1 - n / 10)  # each saved later than the one before
    assert sorted(p.stem for p in tmp_path.glob("*.json")) == sorted(ids[2:])
    # The size cap: a conversation being saved is kept even when it alone is over the cap.
    big = new_conversation_id()
    save_conversation(tmp_path, big, ["x" * 50_000], limits=ConversationLimits(max_mb=0.01))
    assert [p.stem for p in tmp_path.glob("*.json")] == [big]
    assert prune_conversations(tmp_path, ConversationLimits(days=1), now=time.time() + 2 * DAY) == [big]


@pytest.mark.parametrize(
    "var,value", [("RAG_CONVERSATION_DAYS", "thirty"), ("RAG_CONVERSATION_MAX", "0"), ("RAG_CONVERSATION_MAX_MB", "-1")]
)
def test_a_bad_limit_names_the_variable_and_writes_nothing(tmp_path, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(BadArgument, match=rf"\${var} is '{value}'; set it to a number greater than 0"):
        save_conversation(tmp_path / "c", new_conversation_id(), ["q"])
    assert not list((tmp_path / "c").glob("*.json")) if (tmp_path / "c").exists() else True


def test_a_save_on_a_stale_revision_is_refused_and_changes_nothing(tmp_path):
    cid = new_conversation_id()
    assert commit_conversation(tmp_path, cid, ["q1"], 0) == 1
    tab_b = read_conversation(tmp_path, cid)
    assert commit_conversation(tmp_path, cid, ["q1", "q2 from tab A"], 1) == 2
    with pytest.raises(ConversationConflict, match="revision 2 on disk, but this save was based on revision 1") as e:
        commit_conversation(tmp_path, cid, tab_b.turns + ["q3 from tab B"], tab_b.revision)
    assert (e.value.base_revision, e.value.revision) == (1, 2)
    assert load_conversation(tmp_path, cid) == ["q1", "q2 from tab A"]


def test_files_from_before_revisions_are_still_read_and_saved_on(tmp_path):
    cid = new_conversation_id()
    conversation_path(tmp_path, cid).write_text(
        json.dumps({"version": 2, "messages": [{"role": "user", "content": "an old question"}]})
    )
    saved = read_conversation(tmp_path, cid)
    assert saved.turns == ["an old question"] and saved.revision == 0
    assert commit_conversation(tmp_path, cid, [*saved.turns, "a new one"], saved.revision) == 1
    assert load_conversation(tmp_path, cid) == ["an old question", "a new one"]


def test_many_tabs_saving_at_once_lose_no_turn(tmp_path):
    """What the chat page does on a conflict (reload, put its own turn after the newer ones, save again),
    from eight threads at once, as eight Streamlit sessions would."""
    cid = new_conversation_id()
    errors = []

    def tab(n: int) -> None:
        try:
            for k in range(5):
                mine = f"tab {n} question {k}"
                while True:
                    saved = read_conversation(tmp_path, cid)
                    try:
                        commit_conversation(tmp_path, cid, [*saved.turns, mine], saved.revision)
                        break
                    except ConversationConflict:
                        continue
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    final = read_conversation(tmp_path, cid)
    assert sorted(final.turns) == sorted(f"tab {n} question {k}" for n in range(8) for k in range(5))
    assert final.revision == 40


# --- the chat page: two tabs on one conversation ------------------------------------------------------------

APP = str(Path(__file__).resolve().parent.parent / "ui" / "main.py")


@pytest.fixture
def ui_env(tmp_path, corpus_index, embedder, monkeypatch):
    import ui.state

    shutil.copytree(corpus_index, tmp_path / "index")
    monkeypatch.setenv("RAG_INDEX", str(tmp_path / "index"))
    monkeypatch.setenv("RAG_CORPUS", str(tmp_path / "corpus"))
    monkeypatch.setenv("RAG_CONVERSATIONS", str(tmp_path / "conversations"))
    monkeypatch.setattr(ui.state, "EMBEDDER_FACTORY", lambda: embedder)
    return tmp_path


def _tab(cid: str | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    if cid:
        at.query_params["c"] = cid
    at.run()
    assert not at.exception, at.exception
    return at


def _ask(at, question: str):
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def _questions(turns) -> list[str]:
    return [t for t in turns if isinstance(t, str)]


def test_two_tabs_on_one_conversation_keep_both_tabs_turns(ui_env):
    q1, q2, q3 = (
        "How many vehicles did China export in 2023?",
        "What tariff did Turkey impose on Chinese cars?",
        "How many vehicles did Hyundai and Kia build at overseas bases in 2023?",
    )
    a = _ask(_tab(), q1)
    cid = a.query_params["c"]
    b = _tab(cid)
    assert _questions(b.session_state["messages"]) == [q1]
    _ask(a, q2)
    _ask(b, q3)  # B read the conversation before A's second turn
    expected = [q1, q2, q3]
    assert _questions(b.session_state["messages"]) == expected
    assert [m.name for m in b.chat_message] == ["user", "assistant"] * 3  # drawn in their order after a rerun
    assert any("Another tab added to this conversation" in i.value for i in b.info)
    saved = read_conversation(ui_env / "conversations", cid)
    assert _questions(saved.turns) == expected and len(saved.turns) == 6
    # A, now the stale one, clears: the conversation is reloaded, not wiped.
    a.button(key="clear").click().run()
    assert not a.exception, a.exception
    assert _questions(a.session_state["messages"]) == expected
    assert any("reloaded rather than cleared" in i.value for i in a.info)
    assert _questions(load_conversation(ui_env / "conversations", cid)) == expected


# --- conversations belong to their user --------------------------------------------------------------------------


def test_each_user_has_a_private_folder_and_an_id_held_by_another_is_flagged(tmp_path):
    from app.transcript import held_elsewhere, user_folder

    ana, ben = user_folder(tmp_path / "c", "https://idp#ana"), user_folder(tmp_path / "c", "https://idp#ben")
    assert ana != ben and ana.parent == ben.parent == tmp_path / "c" / "users"
    assert "ana" not in ana.name  # a hash: the folder name says nothing about who
    assert user_folder(tmp_path / "c", None) == tmp_path / "c"  # the single local user keeps the old place
    cid = new_conversation_id()
    save_conversation(ana, cid, ["Ana's question"])
    for folder in (tmp_path / "c", tmp_path / "c" / "users", ana):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert held_elsewhere(tmp_path / "c", ben, cid)
    assert held_elsewhere(tmp_path / "c", tmp_path / "c", cid)  # the local user cannot open it either
    assert not held_elsewhere(tmp_path / "c", ana, cid)
    assert not held_elsewhere(tmp_path / "c", ben, new_conversation_id())
    assert load_conversation(ben, cid) == []


def test_conversations_are_listed_newest_first_renamed_and_deleted(tmp_path):
    from app.transcript import delete_conversation, list_conversations, rename_conversation

    first, second, empty = new_conversation_id(), new_conversation_id(), new_conversation_id()
    save_conversation(tmp_path, first, ["How many vehicles did China export in 2023?", "And in 2024?"])
    save_conversation(tmp_path, second, ["x" * 200])
    save_conversation(tmp_path, empty, [])  # cleared: not listed
    os.utime(tmp_path / f"{first}.json", (time.time() - 10, time.time() - 10))  # saved before the second
    listed = list_conversations(tmp_path)
    assert [c.conversation_id for c in listed] == [second, first]
    assert listed[0].title == "x" * 79 + "…" and listed[1].questions == 2
    assert listed[1].title == "How many vehicles did China export in 2023?"

    revision = read_conversation(tmp_path, first).revision
    rename_conversation(tmp_path, first, "  China's   exports ")
    assert read_conversation(tmp_path, first).revision == revision  # renaming is no conflict for an open tab
    commit_conversation(
        tmp_path, first, ["How many vehicles did China export in 2023?", "And in 2024?", "More?"], revision
    )
    assert {c.conversation_id: c.title for c in list_conversations(tmp_path)}[first] == "China's exports"
    rename_conversation(tmp_path, first, "")  # blank: back to the first question
    assert {c.conversation_id: c.title for c in list_conversations(tmp_path)}[first].startswith("How many")
    with pytest.raises(BadArgument, match="no saved conversation"):
        rename_conversation(tmp_path, new_conversation_id(), "title")

    assert delete_conversation(tmp_path, first) and not delete_conversation(tmp_path, first)
    assert [c.conversation_id for c in list_conversations(tmp_path)] == [second]
