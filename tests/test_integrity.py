"""A damaged index is a named error, never an empty one; `rag doctor` finds and repairs it; the UI binds locally.

Real model, real FAISS and SQLite files: each test damages a copy of the session's corpus index the
way a crash, a full disk or a hand edit would, and checks what reading, ingesting and `rag doctor` do.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import faiss
import pytest
from click.testing import CliRunner

from app.cli import cli
from rag.errors import IndexBusy, IndexDamaged, IndexNotFound, RagError
from rag.index.ingest import ingest, remove_documents
from rag.index.layout import current_generation, live_generation, read_manifest
from rag.index.lock import write_lock
from rag.index.reader import Index
from tests.conftest import ROOT

NOTE = "The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"


@pytest.fixture()
def index_copy(tmp_path, corpus_index) -> Path:
    target = tmp_path / "index"
    shutil.copytree(corpus_index, target)
    return target


def open_index(path, embedder) -> Index:
    return Index.open(path, embedder.name, embedder.dimension)


def snapshot(index_dir: Path) -> dict[str, bytes]:
    """Every file of the index folder (but the lock) and its bytes: what "nothing was changed" compares."""
    return {
        str(p.relative_to(index_dir)): p.read_bytes()
        for p in sorted(index_dir.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def _sql(db: Path, statement: str) -> None:
    con = sqlite3.connect(db)
    con.execute(statement)
    con.commit()
    con.close()


def _short_faiss(gen: Path) -> None:
    full = faiss.read_index(str(gen / "vectors.faiss"))
    short = faiss.IndexFlatIP(full.d)
    short.add(full.reconstruct_n(0, full.ntotal - 1))
    faiss.write_index(short, str(gen / "vectors.faiss"))


# kind -> (how to damage the live generation `g` of index folder `d`, what the error must say)
DAMAGE = {
    "current-missing": (lambda d, g: (d / "CURRENT").unlink(), "CURRENT is missing, but 1 complete generation"),
    "current-empty": (lambda d, g: (d / "CURRENT").write_text(""), "CURRENT holds ''"),
    "current-mistyped": (lambda d, g: (d / "CURRENT").write_text(g.name + "x"), "x, which is not in the folder"),
    "current-escapes": (lambda d, g: (d / "CURRENT").write_text("../../etc"), "not the name of a generation"),
    "current-binary": (lambda d, g: (d / "CURRENT").write_bytes(b"\xff\xfe"), "CURRENT cannot be read"),
    "current-incomplete": (lambda d, g: (g / "manifest.json").unlink(), "which is incomplete"),
    "manifest-not-json": (lambda d, g: (g / "manifest.json").write_text('{"format": '), "not readable JSON"),
    "manifest-not-object": (lambda d, g: (g / "manifest.json").write_text("[]"), "holds list, not a JSON object"),
    "manifest-no-chunking": (
        lambda d, g: (g / "manifest.json").write_text(
            json.dumps({k: v for k, v in json.loads((g / "manifest.json").read_text()).items() if k != "chunking"})
        ),
        "no chunking.max_words",
    ),
    "sqlite-garbage": (
        lambda d, g: (g / "meta.sqlite").write_bytes(b"not a database, " * 200),
        "meta.sqlite cannot be read",
    ),
    "sqlite-missing": (lambda d, g: (g / "meta.sqlite").unlink(), "meta.sqlite is missing"),
    "sqlite-no-table": (lambda d, g: _sql(g / "meta.sqlite", "DROP TABLE chunks"), "no such table: chunks"),
    "sqlite-bad-json": (
        lambda d, g: _sql(g / "meta.sqlite", "UPDATE paragraphs SET source_paras = '[1,'"),
        "malformed row",
    ),
    "sqlite-lost-rows": (
        lambda d, g: _sql(g / "meta.sqlite", "DELETE FROM paragraphs WHERE para = 2"),
        "manifest.json counts",
    ),
    "faiss-garbage": (lambda d, g: (g / "vectors.faiss").write_bytes(b"garbage" * 100), "vectors.faiss cannot be read"),
    "faiss-missing": (lambda d, g: (g / "vectors.faiss").unlink(), "vectors.faiss is missing"),
    "faiss-count": (lambda d, g: _short_faiss(g), "vectors for"),
    "vectors-short": (lambda d, g: _truncate(g / "vectors.f32", 1536), "vectors.f32 holds"),
    "bm25-missing": (lambda d, g: (g / "bm25" / "docs.npy").unlink(), "bm25/docs.npy is missing"),
    "bm25-garbage": (lambda d, g: (g / "bm25" / "tf.npy").write_bytes(b"garbage" * 100), "bm25 cannot be read"),
    "bm25-short": (lambda d, g: _truncate_npy(g / "bm25" / "docs.npy"), "but docs.npy and tf.npy hold"),
    "layout-missing": (lambda d, g: (g / "chunk_paras.npy").unlink(), "chunk_paras.npy is missing"),
}


def _truncate(file: Path, drop: int) -> None:
    data = file.read_bytes()
    file.write_bytes(data[:-drop])


def _truncate_npy(file: Path) -> None:
    """A well-formed .npy with one posting fewer: the arrays disagree, though each reads."""
    import numpy as np

    np.save(file, np.load(file)[:-1], allow_pickle=False)


def damage(index_dir: Path, kind: str) -> str:
    gen = index_dir / current_generation(index_dir)
    action, message = DAMAGE[kind]
    action(index_dir, gen)
    return message


# --- finding 8/9: reading a damaged index -------------------------------------------------------------


@pytest.mark.parametrize("kind", DAMAGE)
def test_opening_a_damaged_index_raises_index_damaged_with_the_fix(index_copy, embedder, kind):
    message = damage(index_copy, kind)
    with pytest.raises(IndexDamaged) as caught:
        open_index(index_copy, embedder)
    text = str(caught.value)
    assert message in text, text
    assert str(index_copy) in text and "rag doctor --repair" in text and "--rebuild" in text


@pytest.mark.parametrize("kind", ["manifest-not-json", "sqlite-garbage", "faiss-garbage"])
def test_the_ui_engine_gets_a_rag_error_not_a_traceback(index_copy, embedder, kind):
    """ui/state.get_engine shows any RagError as a message; raw JSON, SQLite and faiss errors were tracebacks."""
    from rag.engine import Engine

    damage(index_copy, kind)
    with pytest.raises(RagError):
        Engine.load(index_copy, embedder)


def test_no_index_at_all_is_still_not_found_and_a_first_ingest_works(tmp_path, embedder):
    empty = tmp_path / "index"
    assert live_generation(empty) is None and read_manifest(empty) is None
    with pytest.raises(IndexNotFound):
        open_index(empty, embedder)
    (empty / "gen-20250101T000000-000000001-1").mkdir(parents=True)  # a first ingest killed mid-way
    assert live_generation(empty) is None
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text(NOTE)
    assert ingest([corpus], empty, embedder).added == ["note"]
    assert [d.name for d in empty.glob("gen-*")] == [current_generation(empty)]  # the killed one was cleaned


# --- finding 8: ingest must not write over a damaged index --------------------------------------------


@pytest.mark.parametrize(
    "kind", ["current-missing", "current-mistyped", "manifest-not-json", "sqlite-garbage", "faiss-count"]
)
def test_ingest_refuses_a_damaged_index_and_changes_nothing(index_copy, embedder, tmp_path, kind):
    damage(index_copy, kind)
    before = snapshot(index_copy)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "upload.md").write_text(NOTE)
    with pytest.raises(IndexDamaged, match="rag doctor --repair"):
        ingest([corpus], index_copy, embedder)
    assert snapshot(index_copy) == before
    with pytest.raises(IndexDamaged):
        remove_documents(index_copy, embedder, ["caixin-commentary"])
    assert snapshot(index_copy) == before


def test_a_lost_current_never_costs_the_old_generation(index_copy, embedder, tmp_path):
    """The finding: CURRENT lost, an upload published an index of one file, and the next write deleted the rest."""
    from app.auth import LOCAL
    from app.corpus import add_uploads

    old = current_generation(index_copy)
    documents = sorted(d.doc_id for d in open_index(index_copy, embedder).documents)
    (index_copy / "CURRENT").unlink()
    corpus = tmp_path / "corpus"
    for _ in range(2):
        with pytest.raises(IndexDamaged):
            add_uploads([("upload.md", NOTE.encode())], corpus, index_copy, embedder, principal=LOCAL)
    assert not (corpus / "upload.md").exists()
    assert (index_copy / old / "manifest.json").exists()

    # An explicit --rebuild may publish a new index, but the generation it could not read stays, write after write.
    (corpus / "upload.md").write_text(NOTE)
    ingest([corpus], index_copy, embedder, rebuild=True)
    (corpus / "second.md").write_text(NOTE.replace("Lodz", "Gdansk"))
    ingest([corpus], index_copy, embedder)
    (corpus / "third.md").write_text(NOTE.replace("Lodz", "Poznan"))
    ingest([corpus], index_copy, embedder)
    assert (index_copy / old / "manifest.json").exists()
    (index_copy / "CURRENT").write_text(old)
    assert sorted(d.doc_id for d in open_index(index_copy, embedder).documents) == documents


def test_ordinary_writes_keep_only_the_live_generation_and_one_spare(tmp_path, embedder):
    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    lives = []
    for i in range(4):
        (corpus / f"note-{i}.md").write_text(NOTE.replace("Lodz", f"town {i}"))
        ingest([corpus], index_dir, embedder)
        lives.append(current_generation(index_dir))
    assert sorted(d.name for d in index_dir.glob("gen-*")) == sorted(lives[-2:])
    manifest = json.loads((index_dir / lives[-1] / "manifest.json").read_text())
    assert manifest["replaces"] == lives[-2]


def test_a_failed_write_leaves_no_stray_generation(index_copy, embedder, tmp_path, monkeypatch):
    live = current_generation(index_copy)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text(NOTE)

    def crash(*args, **kwargs):
        raise OSError("simulated crash at the swap")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        ingest([corpus], index_copy, embedder)
    monkeypatch.undo()
    assert [d.name for d in index_copy.glob("gen-*")] == [live]


# --- the write lock -----------------------------------------------------------------------------------


def test_write_lock_is_reentrant_in_one_thread_and_busy_for_others(tmp_path):
    index_dir = tmp_path / "index"
    errors = []

    def other_writer():
        try:
            with write_lock(index_dir):
                pass
        except IndexBusy as e:
            errors.append(str(e))

    with write_lock(index_dir):
        with write_lock(index_dir):  # corpus.add_uploads holds it around ingest, which takes it again
            pass
        thread = threading.Thread(target=other_writer)
        thread.start()
        thread.join()
    assert errors == [f"another ingest (pid {os.getpid()}) is writing {index_dir}; wait for it to finish"]
    with write_lock(index_dir):  # released for real after the outer block
        pass


# --- rag doctor ---------------------------------------------------------------------------------------


def doctor(index_dir: Path, *args: str):
    return CliRunner().invoke(cli, ["doctor", "--index", str(index_dir), *args])


def test_doctor_passes_a_healthy_index(index_copy):
    result = doctor(index_copy)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[1] for line in lines] == [
        "folder",
        "lock",
        "CURRENT",
        "manifest",
        "vectors",
        "bm25",
        "metadata",
        "counts",
        "paragraphs",
        "sentences",
        "encoder",
        "generations",
    ]
    assert all(line.startswith("ok ") for line in lines), result.output


def test_doctor_warns_about_an_index_without_sentence_vectors_or_encoder(index_copy):
    import shutil

    from rag.embed.onnx_encoder import encoder_folder
    from rag.embed.sentence_vectors import OFFSETS_FILE, VECTORS_FILE
    from rag.index.layout import current_generation

    live = index_copy / current_generation(index_copy)
    (live / VECTORS_FILE).unlink()
    (live / OFFSETS_FILE).unlink()
    shutil.rmtree(encoder_folder(index_copy))
    result = doctor(index_copy)
    assert result.exit_code == 0, result.output  # it still answers: warnings, not damage
    warned = {line.split()[1]: line for line in result.output.splitlines() if line.startswith("warn")}
    assert set(warned) == {"sentences", "encoder"}, result.output
    assert "rag ingest" in result.output


@pytest.mark.parametrize(
    "kind, check",
    [
        ("current-missing", "CURRENT"),
        ("manifest-not-json", "manifest"),
        ("sqlite-garbage", "metadata"),
        ("faiss-garbage", "vectors"),
        ("faiss-count", "counts"),
        ("sqlite-lost-rows", "counts"),
        ("bm25-garbage", "bm25"),
        ("bm25-short", "bm25"),
        ("vectors-short", "vectors"),
    ],
)
def test_doctor_names_the_broken_part_and_the_fix(index_copy, kind, check):
    message = damage(index_copy, kind)
    result = doctor(index_copy)
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert failed and failed[0].split()[1] == check and message in failed[0] and "— fix: " in failed[0], result.output


def test_doctor_on_a_missing_folder_says_how_to_build_one(tmp_path):
    result = doctor(tmp_path / "nowhere")
    assert result.exit_code == 1
    assert result.output.startswith("FAIL  folder") and "rag ingest corpus/ --index" in result.output
    assert not (tmp_path / "nowhere").exists()
    assert doctor(tmp_path / "nowhere", "--repair").exit_code == 1 and not (tmp_path / "nowhere").exists()


def test_doctor_repair_restores_a_lost_current(index_copy, embedder):
    live = current_generation(index_copy)
    (index_copy / "CURRENT").unlink()
    assert "`rag doctor --repair" in doctor(index_copy).output
    result = doctor(index_copy, "--repair")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"repaired  CURRENT now names {live} (it was missing or unreadable)")
    assert open_index(index_copy, embedder).generation == live


def test_doctor_repair_goes_back_to_the_spare_and_keeps_the_broken_generation(index_copy, embedder, tmp_path):
    spare = current_generation(index_copy)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text(NOTE)
    ingest([corpus], index_copy, embedder)
    broken = current_generation(index_copy)
    damage(index_copy, "sqlite-garbage")
    (index_copy / "gen-20000101T000000-000000000-1").mkdir()  # a killed writer's leftover
    (index_copy / "gen-20000101T000000-000000000-1" / "vectors.faiss").write_bytes(b"partial")

    result = doctor(index_copy, "--repair")
    assert result.exit_code == 0, result.output
    assert f"repaired  CURRENT now names {spare} (it named {broken}, which is kept)" in result.output
    assert "repaired  removed incomplete generation gen-20000101T000000-000000000-1" in result.output
    assert (index_copy / broken / "meta.sqlite").exists()  # a complete generation is never deleted
    warn = [line for line in result.output.splitlines() if line.startswith("warn  generations")]
    assert warn and broken in warn[0] and "delete them by hand" in warn[0]
    assert open_index(index_copy, embedder).generation == spare


def test_doctor_repair_does_not_touch_a_model_mismatch(index_copy):
    gen = index_copy / current_generation(index_copy)
    manifest = json.loads((gen / "manifest.json").read_text())
    (gen / "manifest.json").write_text(json.dumps({**manifest, "model": "another-model"}))
    before = snapshot(index_copy)
    result = doctor(index_copy, "--repair")
    assert result.exit_code == 1 and "another-model" in result.output and "--rebuild" in result.output
    assert "repaired" not in result.output and snapshot(index_copy) == before


def test_doctor_repair_refuses_while_a_writer_holds_the_lock(index_copy):
    fd = os.open(index_copy / ".lock", os.O_RDWR)  # another open file: as another process would hold it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        result = doctor(index_copy, "--repair")
        assert doctor(index_copy).output.splitlines()[1].startswith("warn  lock")
    finally:
        os.close(fd)
    assert result.exit_code == 1 and "is writing" in result.output


# --- finding 6: the UI listens on this machine only ---------------------------------------------------


def _non_loopback_ipv4() -> str | None:
    """An address of this machine other than 127.x (a UDP connect sends nothing), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))
        address = s.getsockname()[0]
    except OSError:
        address = None
    finally:
        s.close()
    if address and not address.startswith("127."):
        return address
    try:
        return next((a for a in socket.gethostbyname_ex(socket.gethostname())[2] if not a.startswith("127.")), None)
    except OSError:
        return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


def test_the_ui_server_listens_on_loopback_only():
    """Start the real server as `make run` does (from the project folder, its config) and knock on both doors."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env = {k: v for k, v in env.items() if not k.startswith("STREAMLIT_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "ui/main.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while not _accepts("127.0.0.1", port):
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        other = _non_loopback_ipv4()
        if other:
            assert not _accepts(other, port), f"the UI accepts connections on {other}"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert "Network URL" not in output, output  # Streamlit prints it when it listens on every interface


def test_make_run_binds_to_loopback_unless_the_operator_says_otherwise():
    def run_line(**env):
        out = subprocess.run(
            ["make", "-n", "run", f"VENV={Path(sys.executable).parent.parent}"],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return out[out.index("streamlit run") :]

    assert "--server.address 127.0.0.1" in run_line()
    assert "--server.address 0.0.0.0" in run_line(RAG_BIND_ADDRESS="0.0.0.0")
