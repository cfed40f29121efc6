"""Which files an ingest reads, and which document of the index each one is.

`discover` walks the paths given (hidden files and folders skipped; a symlink that leads out of a folder
being ingested is refused). A file is its document when the index holds its path; otherwise, with the same
bytes, a document that moved (`moved_from`): the same path below its root (a copied checkout, a renamed
folder), or a file gone from where the index last saw it (a rename). A new document's id is its file
name's slug, made unique (`unique_id`).

Not handled: two files with the same bytes where neither path is known (both become documents).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from rag.documents import Document
from rag.errors import IngestError
from rag.index.reader import Index
from rag.load import LoadedFile, file_sha256, slugify


def discover(paths: list[str | Path]) -> tuple[list[Path], list[IngestError]]:
    """Files to ingest: each file given, and every non-hidden file under each folder given.

    A symlink found in a folder (to a file or a folder) that resolves outside that folder is refused with
    an `IngestError` naming it, so a link placed in the corpus cannot pull another file in;
    one that stays inside is kept (a folder link is not walked: its files are reached by their own path).
    A file given by name is the caller's choice, and is read wherever it points.
    """
    files: list[Path] = []
    errors: list[IngestError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            top = path.resolve()
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                names = sorted(n for n in names if not n.startswith("."))
                for name in [*dirs, *names]:
                    entry = Path(root) / name
                    if not entry.is_symlink():
                        continue
                    try:
                        target = entry.resolve()
                    except (OSError, RuntimeError):  # a symlink loop
                        target = None
                    if target is None or not target.is_relative_to(top):
                        # The target is not named: over HTTP the reason goes back to the caller.
                        errors.append(
                            IngestError(
                                entry.absolute(),
                                "symlink that leads outside the folder being "
                                "ingested; refused (copy the file in instead)",
                            )
                        )
                        if name in dirs:
                            dirs.remove(name)
                        else:
                            names.remove(name)
                files.extend(Path(root) / n for n in names)
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            errors.append(IngestError(path, "no such file or folder"))
    unique = list(dict.fromkeys(f.absolute() for f in files))
    return unique, errors


def moved_from(path: Path, roots: list[Path], old: Index | None, claimed: set[str]) -> Document | None:
    """The document of the index that `path` is, moved: same bytes, and either the same path below its root
    (the corpus was copied or its folder renamed) or a file that is no longer where the index last saw it."""
    if old is None:
        return None
    same = [d for d in old.documents if d.source_path not in claimed]
    if not same:
        return None
    digest = file_sha256(path)
    same = [d for d in same if d.sha256 == digest]
    tail = below_root(path, roots)
    for doc in sorted(same, key=lambda d: d.doc_id):
        if Path(doc.source_path).parts[-len(tail.parts) :] == tail.parts:
            return doc
    return next((d for d in sorted(same, key=lambda d: d.doc_id) if not Path(d.source_path).exists()), None)


def below_root(path: Path, roots: list[Path]) -> Path:
    """`path` relative to the folder it was found under ("corpus/a/b.md" under "corpus" -> "a/b.md")."""
    for root in roots:
        if root != path and root in path.parents:
            return path.relative_to(root)
    return Path(path.name)


def unique_id(path: Path, used: dict[str, str]) -> str:
    """The file name's slug; on a clash with another file, add its extension, then a number."""
    base = slugify(path.name)
    candidates = [base, f"{base}-{path.suffix.lower().lstrip('.')}"] + [f"{base}-{n}" for n in range(2, 1000)]
    for candidate in candidates:
        if used.get(candidate, str(path)) == str(path):
            return candidate
    raise IngestError(path, "too many files share this name")


def under_any(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def with_doc_id(loaded: LoadedFile, doc_id: str) -> LoadedFile:
    if loaded.document.doc_id == doc_id:
        return loaded
    return replace(
        loaded,
        document=replace(loaded.document, doc_id=doc_id),
        paragraphs=[replace(p, doc_id=doc_id) for p in loaded.paragraphs],
    )
