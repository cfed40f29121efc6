"""Issue 21's metamorphic test: the shipped corpus with its place, company and agency names replaced by invented
ones, in the documents and the gold set alike, scores within 0.03 of the original on every gold metric (issue 21's
bar; where the code does not reach it yet, within the gap measured today, `evals.metamorphic.KNOWN_GAPS`, so that
no gap widens).

The renaming itself is checked first (cheap): consistency, word boundaries, acronyms, that no original name
survives, and that every paragraph of the renamed corpus is its original renamed, at the same number. The run
(`test_renamed_corpus_scores_like_the_original`) ingests the renamed corpus once with the session's encoder and
answers both gold sets; the original is the session's index of corpus/ (tests/conftest.py), read only.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from evals.gold import load_gold, resolve_evidence
from evals.metamorphic import (
    BRIEFING_SOURCES,
    CORPUS,
    GOLD,
    KNOWN_GAPS,
    LABEL_FIELDS,
    TOLERANCE,
    Renamer,
    compare,
    ingest_corpus,
    render_briefing,
    run_gold,
    write_renamed,
    write_report,
)
from evals.metamorphic_names import NAMES
from rag.load import load_file


@pytest.fixture(scope="module")
def renamer() -> Renamer:
    return Renamer()


@pytest.fixture(scope="module")
def renamed(tmp_path_factory, renamer) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("metamorphic")
    return out, write_renamed(out, renamer)


def _acronym(name: str) -> bool:
    return not any(c.islower() for c in name)


def _gold_strings(record, key: str = ""):
    if isinstance(record, str):
        if key not in LABEL_FIELDS:
            yield record
    elif isinstance(record, list):
        for v in record:
            yield from _gold_strings(v, key)
    elif isinstance(record, dict):
        for k, v in record.items():
            yield from _gold_strings(v, k)


def _texts(corpus: Path, gold: Path) -> list[str]:
    """Every paragraph, heading and title of a corpus as the loaders read it, and every text of its gold set."""
    texts = []
    for path in sorted(corpus.iterdir()):
        loaded = load_file(path)
        texts += [loaded.document.title, *loaded.document.meta.values()]
        texts += [t for p in loaded.paragraphs for t in (p.text, p.heading)]
    for path in sorted(gold.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts += list(_gold_strings(json.loads(line)))
    return [t for t in texts if isinstance(t, str)]


# ---------------------------------------------------------------- the renaming


def test_longest_match_first_keeps_compound_names_consistent(renamer):
    assert renamer("South Korea, Korea, South Korean and Korean makers") == (
        "South Ombrelia, Ombrelia, South Ombrelian and Ombrelian makers"
    )
    assert renamer("the United States, United Arab Emirates (UAE) and Saudi Arabia") == (
        "the United Qalmeres, United Orrab Emirates (UOE) and Zaldi Orrabia"
    )
    assert renamer("China's and China’s Chinese-made cars") == "Drovania's and Drovania’s Drovanian-made cars"


def test_only_whole_words_are_replaced(renamer):
    kept = "USB us Kiama Chinatown DS626 Seagull Camry Commission Ministry EUR 5 million"
    assert renamer(kept) == kept
    assert renamer("U.S. and US-built, the U.K.") == "U.Q. and UQ-built, the U.J."
    assert renamer("the MG6 and MG cars") == "the VQ6 and VQ cars"
    # lower case only in slugs, file names and addresses
    assert renamer("caixin-commentary and https://www.reuters.com/china-autos") == (
        "brellix-commentary and https://www.dovranet.com/drovania-autos"
    )


def test_capitalisation_and_acronym_shape_are_kept(renamer):
    for real, fake in NAMES.items():
        if _acronym(real):
            assert _acronym(fake) and len(fake) == len(real), (real, fake)
            assert [c for c in real if not c.isalpha()] == [c for c in fake if not c.isalpha()], (real, fake)
        else:
            assert real[0].isupper() == fake[0].isupper() and not _acronym(fake), (real, fake)
    assert renamer("CHINA and KOREA") == "DROVANIA and OMBRELIA"


def test_acronyms_follow_their_spelled_out_forms(renamer):
    assert renamer("China Association of Automobile Manufacturers (CAAM)") == (
        "Drovania Association of Automobile Manufacturers (DAAM)"
    )
    assert renamer("International Energy Agency (IEA)") == "Xelvand Energy Agency (XEA)"
    # Every "Long Form (ACRO)" of the shipped texts whose acronym starts with its long form's initial still does.
    spelled = re.compile(r"((?:[A-Z][\w’'.-]*|of|and|for|the)(?: (?:[A-Z][\w’'.-]*|of|and|for|the))*) \(([A-Z]{2,7})\)")
    checked = 0
    for text in _texts(CORPUS, GOLD):
        for m in spelled.finditer(text):
            words = [w for w in m.group(1).split() if w[0].isupper()]
            if not words or words[0][0] != m.group(2)[0]:
                continue
            new = spelled.fullmatch(renamer(m.group(0)))
            assert new, m.group(0)
            first = [w for w in new.group(1).split() if w[0].isupper()][0]
            assert first[0] == new.group(2)[0], (m.group(0), new.group(0))
            checked += 1
    assert checked >= 4


def test_invented_names_are_no_real_words(embedder):
    """No invented word is a word of the shipped texts or a whole token of the encoder's vocabulary (so the
    encoder has never seen it as a word), unless the real name holds it too ("United", "Motors")."""
    vocabulary = {w.lower() for t in _texts(CORPUS, GOLD) for w in re.findall(r"\w+", t)}
    encoder_words = set(embedder.model.tokenizer.get_vocab())
    fakes = list(NAMES.values())
    assert len(set(fakes)) == len(fakes), "two real names share an invented one"
    assert not set(fakes) & set(NAMES), "an invented name is also a real one of the map"
    for real, fake in NAMES.items():
        kept = {w.lower() for w in re.findall(r"\w+", real)}
        for word in re.findall(r"\w+", fake):
            w = word.lower()
            if w in kept or len(w) < 3 or w.isdigit():
                continue
            assert w not in vocabulary, f"{fake!r} ({real}): {w!r} is a word of the corpus"
            assert len(w) < 5 or w not in encoder_words, f"{fake!r} ({real}): {w!r} is a word the encoder knows"


def test_no_original_name_survives(renamed, renamer):
    out, files = renamed
    texts = _texts(out / "corpus", out / "gold")
    survivors = {}
    for real in NAMES:
        pattern = re.compile(rf"(?<!\w){re.escape(real)}(?!\w)")
        hits = [t for t in texts if pattern.search(t)]
        if hits:
            survivors[real] = hits[0][:120]
    assert not survivors, survivors
    slug_names = [r.lower() for r in NAMES if not _acronym(r)]
    for name in files.values():
        assert not any(re.search(rf"(?<![a-z]){re.escape(s)}(?![a-z])", name) for s in slug_names), name


def test_paragraphs_match_one_for_one(renamed, renamer):
    """Each renamed paragraph is its original renamed, at the same number, so gold citations still point at it."""
    out, files = renamed
    original, changed = [], []
    for before, after in files.items():
        a, b = load_file(CORPUS / before), load_file(out / "corpus" / after)
        assert b.document.doc_id == renamer(a.document.doc_id)
        assert b.document.title == renamer(a.document.title)
        assert [(p.para, renamer(p.text), renamer(p.heading)) for p in a.paragraphs] == [
            (p.para, p.text, p.heading) for p in b.paragraphs
        ], before
        original += a.paragraphs
        changed += b.paragraphs
    gold_a = resolve_evidence(load_gold(GOLD), original)
    gold_b = resolve_evidence(load_gold(out / "gold"), changed)
    assert {k: [(renamer(d), p) for d, p in v] for k, v in gold_a.items()} == {k: list(v) for k, v in gold_b.items()}


def test_the_briefing_generator_reproduces_the_shipped_pdfs(tmp_path):
    """The renamed PDFs come from scripts/build_briefings.py; unrenamed, it gives the shipped bytes."""
    for pdf in sorted(CORPUS.glob("*.pdf")):
        out = tmp_path / pdf.name
        render_briefing((BRIEFING_SOURCES / f"{pdf.stem}.md").read_text(encoding="utf-8"), out, tmp_path / "src")
        assert out.read_bytes() == pdf.read_bytes(), pdf.name


# ---------------------------------------------------------------- the metamorphic run


def test_renamed_corpus_scores_like_the_original(renamed, renamer, engine, embedder, corpus_index, tmp_path):
    from evals.cache import CachedEmbedder
    from rag.engine import Engine

    out, _ = renamed
    index_dir = tmp_path / "renamed-index"
    # The ONNX query encoder of the session's index, so this ingest does not export it again: it depends on the
    # model alone, and the eval answers with the session's encoder anyway.
    shutil.copytree(corpus_index / "encoder", index_dir / "encoder")
    ingest_corpus(out / "corpus", index_dir, embedder)
    cached = CachedEmbedder(embedder)
    before = run_gold(engine, GOLD, cached)
    after = run_gold(Engine.load(index_dir, embedder), out / "gold", cached)
    result = replace(
        compare(before, after, renamer, TOLERANCE, getattr(engine.answerer, "thresholds", None)), allowed=KNOWN_GAPS
    )
    write_report(tmp_path / "report", result, {"gold original": before.seconds, "gold renamed": after.seconds})
    assert not result.failures, (
        f"metrics beyond ±{TOLERANCE} (or their known gap) with invented names:\n{result.table_text()}\n\n"
        f"{len(result.changed)} questions changed verdict:\n{result.changed_text()}"
    )
