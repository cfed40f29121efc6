"""Named errors of the library. Only the CLI and the UI turn them into messages and exit codes.

Every message names the bad value and says what to do about it.
"""

from __future__ import annotations

from pathlib import Path


class RagError(Exception):
    """Base class of every error paracite raises on purpose."""


class IngestError(RagError):
    """One file could not be turned into paragraphs. The rest of the corpus still goes in."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class IndexNotFound(RagError):
    """There is no index, or an empty one, where a question was asked."""

    def __init__(self, index_dir: str | Path, detail: str = "no index"):
        self.index_dir = str(index_dir)
        super().__init__(
            f"{detail} at {self.index_dir}. Build one with: rag ingest corpus/ --index {self.index_dir}"
        )


class IndexMismatch(RagError):
    """The index on disk was built by another model or another format version."""


class IndexBusy(RagError):
    """Another ingest holds the index lock."""


class UnknownParagraph(RagError):
    """A document id or paragraph number that the index does not hold."""


class BadArgument(RagError, ValueError):
    """A setting with a value outside its range; the message lists the valid ones."""


class BackendUnavailable(RagError):
    """An LLM backend that could not be reached, or that refused the request."""

    def __init__(self, spec: str, address: str, reason: str):
        self.spec = spec
        self.address = address
        self.reason = reason
        super().__init__(f"LLM backend {spec} at {address} cannot be reached ({reason}). "
                         f"Start the server, or pass --base-url with its address.")


class OverBudget(IngestError):
    """One file needs more than a parse budget allows (time, memory, pages, characters, bytes).

    `limit` names the budget (an attribute of `rag.loaders.limits.Limits`) and `env` the variable
    that raises it; the message says both. The rest of the corpus still goes in.
    """

    def __init__(self, path: str | Path, reason: str, limit: str, env: str):
        self.limit = limit
        self.env = env
        super().__init__(path, reason)
