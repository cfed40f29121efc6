"""What an ingest did: documents added, updated, unchanged, moved, removed and failed, and what was embedded."""

from __future__ import annotations

from dataclasses import dataclass, field

from rag.errors import IngestError


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)  # unchanged documents found at another path (also in `unchanged`)
    failed: list[IngestError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    passages_embedded: int = 0
    sentences_embedded: int = 0
    seconds: float = 0.0
    generation: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        if self.generation and not self.changed and not self.failed and not self.moved:
            return (
                f"Added sentence vectors to {len(self.unchanged)} unchanged documents: {self.sentences_embedded} "
                f"sentences embedded in {self.seconds:.1f}s."
            )
        if not self.changed and not self.failed and not self.moved:
            return f"Nothing changed: {len(self.unchanged)} documents up to date ({self.seconds:.1f}s)."
        moved = f" ({len(self.moved)} moved)" if self.moved else ""
        parts = [
            f"{len(self.added)} added",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged{moved}",
            f"{len(self.removed)} removed",
            f"{len(self.failed)} failed",
        ]
        return (
            f"{', '.join(parts)}; {self.passages_embedded} passages and {self.sentences_embedded} sentences embedded "
            f"in {self.seconds:.1f}s."
        )
