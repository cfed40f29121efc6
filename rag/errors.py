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
        super().__init__(f"{detail} at {self.index_dir}. Build one with: rag ingest corpus/ --index {self.index_dir}")


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
        super().__init__(
            f"LLM backend {spec} at {address} cannot be reached ({reason}). "
            f"Start the server, or pass --base-url with its address."
        )


class IndexDamaged(RagError):
    """An index is here but cannot be trusted: CURRENT, a manifest, the SQLite store or the vectors are broken.

    Distinct from `IndexNotFound` (nothing here yet, so a first ingest is fine): writing over a
    damaged index would publish an index without its old documents, so ingest refuses instead.
    """

    def __init__(self, index_dir: str | Path, problem: str, fix: str | None = None):
        self.index_dir = str(index_dir)
        self.problem = problem
        self.fix = fix or (
            f"run `rag doctor --index {self.index_dir}` to see every problem, then "
            f"`rag doctor --repair --index {self.index_dir}` to go back to the newest complete "
            f"generation, or rebuild it with `rag ingest corpus/ --rebuild --index {self.index_dir}`"
        )
        super().__init__(f"the index at {self.index_dir} is damaged: {problem}. To fix it, {self.fix}")


class CorpusRestoreFailed(RagError):
    """A failed upload batch could not put every corpus file back; the old bytes wait in the staging folder."""

    def __init__(self, files: list[str], staging_dir: str | Path):
        self.files = list(files)
        self.staging_dir = str(staging_dir)
        super().__init__(
            f"could not put back {', '.join(self.files)} after a failed upload; their old bytes are "
            f"kept in {self.staging_dir} as old-<n>-<name>: move them back by hand, "
            f"then run `rag ingest corpus/`"
        )


class BackendsConfigError(RagError):
    """The operator's LLM backends file (`app.backends`) is unreadable or has a bad entry."""

    def __init__(self, path: str | Path, line: int | None, problem: str, fix: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        self.fix = fix
        where = f"{self.path}, line {line}" if line else self.path
        super().__init__(f"LLM backends file {where}: {problem}. To fix it, {fix}")


class ConversationConflict(RagError):
    """A saved conversation changed (another tab) since this session read it; its save would drop turns."""

    def __init__(self, conversation_id: str, base_revision: int, revision: int):
        self.conversation_id = conversation_id
        self.base_revision = base_revision
        self.revision = revision
        super().__init__(
            f"conversation {conversation_id} is at revision {revision} on disk, but this save was "
            f"based on revision {base_revision} (another tab added to it). Reload it with "
            f"app.transcript.read_conversation, add the new turns after its own, and save again"
        )


class OverBudget(IngestError):
    """One file needs more than a parse budget allows (time, memory, pages, characters, bytes).

    `limit` names the budget (an attribute of `rag.load.limits.Limits`) and `env` the variable
    that raises it; the message says both. The rest of the corpus still goes in.
    """

    def __init__(self, path: str | Path, reason: str, limit: str, env: str):
        self.limit = limit
        self.env = env
        super().__init__(path, reason)


class ApiTokensConfigError(RagError):
    """The operator's API tokens file (`app.serve`) is unreadable or has a bad entry."""

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"API tokens file {self.path}: {problem}. To fix it, {fix}")


class NotAuthenticated(RagError):
    """An HTTP API request without a valid bearer token, where the server has a tokens file."""


class NotAllowed(RagError):
    """An HTTP API request whose caller's role (or address) does not allow it."""


class ServerUnreachable(RagError):
    """The `rag serve` server that `rag ask --server` (or $RAG_SERVER) names does not answer."""

    def __init__(self, server: str, reason: str):
        self.server = server
        self.reason = reason
        super().__init__(
            f"no paracite server answers at {server} ({reason}). Start one with `rag serve`, or unset "
            f"RAG_SERVER and drop --server to answer in this process"
        )


class ServerError(RagError):
    """A `rag serve` server answered with a typed error; `kind` is the name of the server's error class."""

    def __init__(self, server: str, status: int, kind: str, message: str):
        self.server = server
        self.status = status
        self.kind = kind
        super().__init__(f"{message} (from the server at {server}: HTTP {status} {kind})")
