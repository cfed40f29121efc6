"""The operator's LLM backends: which servers paracite may contact, with which model, and which key goes where.

A visitor of the UI chooses a backend by its name only; the address, the model and the key come
from this configuration, which only the operator writes. The file is TOML, at $RAG_BACKENDS or
else `.paracite/backends.toml` (relative to the working directory); no file means no backends
(the UI then offers only the extractive answerer):

    # .paracite/backends.toml
    [backends.llama]
    kind = "ollama"                       # ollama, openai (any OpenAI-compatible server) or local
    model = "llama3.2"
    address = "http://localhost:11434"

    [backends.gpt]
    kind = "openai"
    model = "gpt-4o-mini"
    address = "https://api.openai.com/v1"
    key_env = "OPENAI_API_KEY"            # the env var whose value is sent, as a Bearer key, to this address only

    [backends.smol]
    kind = "local"                        # SmolLM2 in-process: no model, no address
    role = "reader"                       # the lowest role that may choose it (default admin; app.auth)

Choosing an LLM backend over the extractive answerer spends the operator's model time and keys, so
with sign-in on it is an admin's right unless a backend's `role` lowers it (`allowed_backends`).

The key rule (`key_env_for`), for configured backends and for the CLI's ad-hoc specs alike: a key
goes only to an address the operator configured for that key, i.e. a backend of this file that
names the key's env var, or the address the key's own client configuration names ($OPENAI_BASE_URL,
else api.openai.com, for OPENAI_API_KEY; $OLLAMA_HOST, when set, for OLLAMA_API_KEY).

Not handled: keys stored in the file itself (name an env var instead), credentials in an address
(refused), per-visitor quotas or rate limits on a backend, and reloading a running client when the
file changes (the UI keys its cache on the whole backend record, so a changed entry builds a new one).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from app.auth import Principal, Role
from app.operator_files import operator_file
from rag.errors import BackendsConfigError, BadArgument

DEFAULT_PATH = Path(".paracite") / "backends.toml"
KINDS = ("ollama", "openai", "local")
OLLAMA_DEFAULT_URL = "http://localhost:11434"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
# The env var each kind's own client reads its key from; we read it ourselves and pass it explicitly.
STANDARD_KEY_ENV = {"ollama": "OLLAMA_API_KEY", "openai": "OPENAI_API_KEY"}
LOCAL_ADDRESS = "in-process"

# Names appear in the UI and in `rag ask --llm NAME`: no ":" (that is how a kind:model spec is told apart).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_FIELDS = {"kind", "model", "address", "key_env", "role"}
EXAMPLE = '[backends.llama]\nkind = "ollama"\nmodel = "llama3.2"\naddress = "http://localhost:11434"'


@dataclass(frozen=True)
class Backend:
    """One LLM backend. `spec` is what `app.chat_models.parse_spec` reads (`ollama:llama3.2`, `local`)."""

    name: str
    kind: str
    model: str = ""
    address: str = LOCAL_ADDRESS
    key_env: str | None = None
    role: Role = field(default=Role.ADMIN, repr=False)  # the lowest role that may choose it; not the client's

    @property
    def spec(self) -> str:
        return self.kind if self.kind == "local" else f"{self.kind}:{self.model}"

    def key(self) -> str | None:
        """The key's value, read now (never stored on the record, so it is not in its repr or a cache key)."""
        return os.environ.get(self.key_env) or None if self.key_env else None


def normalize_address(address: str) -> str:
    """One spelling per server, so that "is this address configured?" is a plain comparison.

    >>> normalize_address("LOCALHOST:11434/"), normalize_address("https://Api.OpenAI.com/v1/")
    ('http://localhost:11434', 'https://api.openai.com/v1')
    """
    text = address.strip()
    if "://" not in text:
        text = "http://" + text  # what ollama-python assumes too
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadArgument(f"not an http(s) address: {address!r}; write it like http://localhost:11434")
    if parts.username or parts.password:
        raise BadArgument(
            f"the address {_without_userinfo(parts)} carries credentials; remove them from the "
            f"address and name the env var that holds the key with key_env"
        )
    if parts.query or parts.fragment:
        raise BadArgument(f"the address {address!r} has a query or fragment; give only scheme, host, port and path")
    try:
        port = parts.port
    except ValueError:
        raise BadArgument(f"the address {address!r} has a bad port; write it like http://localhost:11434") from None
    if port == (443 if parts.scheme == "https" else 80):
        port = None
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, f"{host}:{port}" if port else host, parts.path.rstrip("/"), "", ""))


def _without_userinfo(parts) -> str:
    return f"{parts.scheme}://{parts.hostname}{parts.path}"


def config_path() -> Path | None:
    """$RAG_BACKENDS, else .paracite/backends.toml when it exists, else None (no backends)."""
    return operator_file("RAG_BACKENDS", DEFAULT_PATH)


def load_backends(path: str | Path | None = None) -> dict[str, Backend]:
    """The configured backends by name, in file order; {} when there is no file.

    A file named by $RAG_BACKENDS (or `path`) that does not exist is an error, not "no backends":
    the operator meant one.
    """
    path = Path(path) if path is not None else config_path()
    if path is None:
        return {}
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise BackendsConfigError(
            path,
            None,
            f"cannot be read ({e.strerror or e})",
            "create it (see SECURITY.md for an example) or unset RAG_BACKENDS",
        ) from None
    except UnicodeDecodeError:
        raise BackendsConfigError(path, None, "is not UTF-8 text", "save it as UTF-8") from None
    return parse_backends(text, path)


def parse_backends(text: str, source: str | Path = "<backends>") -> dict[str, Backend]:
    """Parse and check a backends file; every problem names its line and field and says how to fix it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = getattr(e, "lineno", None) or _line_from_message(str(e))
        raise BackendsConfigError(
            source, line, f"is not valid TOML ({e})", "fix the syntax; a backend looks like:\n" + EXAMPLE
        ) from None
    unknown = sorted(set(data) - {"backends"})
    if unknown:
        raise BackendsConfigError(
            source,
            _find_line(text, unknown[0]),
            f"has an unknown top-level entry {unknown[0]!r}",
            "put every backend under [backends.NAME]",
        )
    tables = data.get("backends", {})
    if not isinstance(tables, dict):
        raise BackendsConfigError(
            source, _find_line(text, "backends"), "'backends' must be a table", "write each backend as [backends.NAME]"
        )
    backends = {}
    for name, entry in tables.items():
        line = _find_line(text, f"backends.{name}") or _find_line(text, f'backends."{name}"') or _find_line(text, name)
        backends[name] = _backend(name, entry, source, line, text)
    return backends


def _backend(name: str, entry, source, line: int | None, text: str) -> Backend:
    def bad(field: str | None, problem: str, fix: str) -> BackendsConfigError:
        where = (_find_line(text, field, after=line) if field else None) or line
        label = f"backend {name!r}" + (f", field {field!r}," if field else "")
        return BackendsConfigError(source, where, f"{label} {problem}", fix)

    if not _NAME.fullmatch(name) or name.lower() == "extractive":
        raise bad(
            None,
            "has a name that cannot be used",
            "use letters, digits, '.', '_' or '-' (at most 40, no ':'), and not 'extractive'",
        )
    if not isinstance(entry, dict):
        raise bad(None, "is not a table", f"write it as [backends.{name}] with kind, model and address")
    if name.lower() == "local" and entry.get("kind") != "local":
        # `rag ask --llm local` always means the in-process model; a backend of that name must be it.
        raise bad("kind", "is named 'local' but is not of kind 'local'", "give it another name")
    extra = sorted(set(entry) - _FIELDS)
    if extra:
        hint = (
            " (a key's value never goes in this file: name its env var with key_env)"
            if "key" in " ".join(extra)
            else ""
        )
        raise bad(extra[0], f"is not a known field{hint}", f"use only {', '.join(sorted(_FIELDS))}")
    for key, value in entry.items():
        if not isinstance(value, str):
            raise bad(key, f"must be a string, not {type(value).__name__}", f'quote it: {key} = "..."')
    try:
        role = Role.parse(entry.pop("role", "admin"))
    except ValueError as e:
        raise bad("role", f"is wrong: {e}", 'write role = "reader", "editor" or "admin" (the default)') from None
    kind = entry.get("kind", "")
    if kind not in KINDS:
        raise bad(
            "kind" if "kind" in entry else None,
            f"has kind {kind!r}" if kind else "has no kind",
            f"set kind to one of {', '.join(KINDS)}",
        )
    if kind == "local":
        for field in ("model", "address", "key_env"):
            if field in entry:
                raise bad(field, "does not apply to kind 'local' (SmolLM2 runs in this process)", f"remove {field}")
        return Backend(name, "local", role=role)
    model = entry.get("model", "").strip()
    if not model:
        raise bad("model" if "model" in entry else None, "has no model", 'add model = "...", e.g. model = "llama3.2"')
    if not entry.get("address", "").strip():
        raise bad(
            "address" if "address" in entry else None,
            "has no address",
            f'add address = "...", e.g. {OLLAMA_DEFAULT_URL if kind == "ollama" else OPENAI_DEFAULT_URL}',
        )
    try:
        address = normalize_address(entry["address"])
    except BadArgument as e:
        raise bad("address", f"is wrong: {e}", "give an http(s) address without credentials") from None
    key_env = entry.get("key_env")
    if key_env is not None and not _ENV_NAME.fullmatch(key_env):
        raise bad(
            "key_env",
            f"must name an environment variable, not {key_env!r}",
            'write the variable\'s name, e.g. key_env = "OPENAI_API_KEY", and export the key in it',
        )
    return Backend(name, kind, model, address, key_env, role)


def allowed_backends(backends: dict[str, Backend], principal: Principal) -> dict[str, Backend]:
    """The backends `principal` may choose: those whose `role` it holds (all of them for an admin).

    >>> b = {"gpt": Backend("gpt", "openai", "m", "https://x"), "smol": Backend("smol", "local", role=Role.READER)}
    >>> list(allowed_backends(b, Principal("u", None, Role.READER)))
    ['smol']
    """
    return {name: b for name, b in backends.items() if principal.role >= b.role}


def _line_from_message(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _find_line(text: str, needle: str | None, after: int | None = None) -> int | None:
    """The 1-based line where `needle` first appears as a table header or a key (after line `after`)."""
    if not needle:
        return None
    pattern = re.compile(rf"^\s*(\[\s*{re.escape(needle)}\s*[\].]|\"?{re.escape(needle)}\"?\s*[=.])")
    for number, line in enumerate(text.splitlines(), start=1):
        if after and number < after:
            continue
        if pattern.match(line):
            return number
    return None


def env_address(kind: str) -> str | None:
    """The address the kind's own client configuration names, i.e. the home of its standard key; None if none."""
    if kind == "openai":
        return normalize_address(os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL)
    if kind == "ollama" and os.environ.get("OLLAMA_HOST"):
        return normalize_address(os.environ["OLLAMA_HOST"])
    return None


def default_address(kind: str) -> str:
    if kind == "ollama":
        return normalize_address(os.environ.get("OLLAMA_HOST") or OLLAMA_DEFAULT_URL)
    if kind == "openai":
        return normalize_address(os.environ.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL)
    return LOCAL_ADDRESS


def key_env_for(kind: str, address: str, configured: dict[str, Backend] | None = None) -> str | None:
    """Which env var's key may go to `address` for an ad-hoc `kind:model` spec (the CLI's), or None.

    >>> key_env_for("openai", "http://127.0.0.1:8000/v1", {}) is None   # an address nobody configured
    True
    """
    if kind not in STANDARD_KEY_ENV:
        return None
    address = normalize_address(address)
    for backend in (configured or {}).values():
        if backend.kind == kind and backend.address == address and backend.key_env:
            return backend.key_env
    if address == env_address(kind):
        return STANDARD_KEY_ENV[kind]
    return None


def backend_for_spec(
    kind: str, model: str = "", base_url: str | None = None, configured: dict[str, Backend] | None = None
) -> Backend:
    """A backend for an ad-hoc spec (the operator's CLI, already parsed by `app.chat_models.parse_spec`),
    with a key only where `key_env_for` allows; it is named by its spec.

    >>> backend_for_spec("openai", "smollm2", "http://127.0.0.1:8000/v1/", {})
    Backend(name='openai:smollm2', kind='openai', model='smollm2', address='http://127.0.0.1:8000/v1', key_env=None)
    """
    if kind == "local":
        return Backend("local", "local")
    if kind not in STANDARD_KEY_ENV or not model:
        raise BadArgument(f"not an LLM backend: {kind}:{model}; use local, ollama:MODEL or openai:MODEL")
    address = normalize_address(base_url) if base_url else default_address(kind)
    return Backend(f"{kind}:{model}", kind, model, address, key_env_for(kind, address, configured))
