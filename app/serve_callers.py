"""Who is calling `rag serve`: the operator's API tokens file, `identify` (the one lookup), and the route dependency.

Callers are `app.auth.Principal`s, as the UI's signed-in users are: the same roles, the same `require`.
With a tokens file ($RAG_API_TOKENS, else `.paracite/api-tokens.toml`) a caller sends
`Authorization: Bearer TOKEN`; the file stores the sha256 of each token with a user name and a role.
With no tokens file only loopback callers that address the server as 127.0.0.1 or localhost are
served, each as the local admin. Unknown tokens are audited and rate-limited per client address
(`SignInThrottle`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import re
import threading
import time
import tomllib
from collections import OrderedDict, deque
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import audit
from app.auth import LOCAL, Principal, Role, require
from app.operator_files import operator_file
from rag.errors import ApiTokensConfigError, NotAllowed, NotAuthenticated, RagError

TOKENS_ENV = "RAG_API_TOKENS"
DEFAULT_TOKENS_PATH = Path(".paracite") / "api-tokens.toml"
MAX_FAILED_SIGN_INS = 10  # unknown tokens from one address within SIGN_IN_WINDOW_S, then 429 until they age out
SIGN_IN_WINDOW_S = 60

# Callers are `app.auth.Principal`s, as the UI's signed-in users are: the same roles, the same `require`.
Tokens = dict[str, Principal]  # sha256 hex of a token -> its caller
_SHA256 = re.compile(r"[0-9a-f]{64}")
TOKENS_EXAMPLE = '[[tokens]]\nuser = "alice"\nrole = "editor"\nsha256 = "<sha256 hex of her token>"'


def tokens_path() -> Path | None:
    """$RAG_API_TOKENS, else .paracite/api-tokens.toml when it exists, else None (no tokens: loopback only)."""
    return operator_file(TOKENS_ENV, DEFAULT_TOKENS_PATH)


def load_tokens(path: str | Path | None = None) -> Tokens | None:
    """The operator's tokens by their sha256, or None when there is no tokens file.

    The file (TOML) lists one table per token, so a user may hold two while one is rotated:

        [[tokens]]
        user = "alice"
        role = "editor"                      # reader, editor or admin
        sha256 = "9f86d081884c7d65..."       # printf %s "$TOKEN" | sha256sum
    """
    path = Path(path) if path is not None else tokens_path()
    if path is None:
        return None
    fix = f"write it as in this example:\n{TOKENS_EXAMPLE}"
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as e:
        raise ApiTokensConfigError(
            path, f"cannot be read ({e.strerror or e})", f"create it, or unset {TOKENS_ENV}"
        ) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ApiTokensConfigError(path, f"is not valid TOML ({e})", fix) from None
    entries = data.get("tokens")
    if set(data) - {"tokens"} or not isinstance(entries, list):
        raise ApiTokensConfigError(path, "expected only [[tokens]] tables", fix)
    tokens: Tokens = {}
    for n, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or set(entry) != {"user", "role", "sha256"}:
            raise ApiTokensConfigError(path, f"token {n} needs exactly the keys user, role and sha256", fix)
        user, role, digest = entry["user"], entry["role"], str(entry["sha256"]).lower()
        if not isinstance(user, str) or not user.strip():
            raise ApiTokensConfigError(path, f"token {n} has no user name", fix)
        try:
            role = Role.parse(role) if isinstance(role, str) else None
        except ValueError:
            role = None
        if role is None:
            raise ApiTokensConfigError(
                path, f"token {n} ({user}) has role {entry['role']!r}", f"use one of {', '.join(str(r) for r in Role)}"
            )
        if not _SHA256.fullmatch(digest):
            raise ApiTokensConfigError(
                path,
                f"token {n} ({user}): sha256 is not 64 hex digits",
                'store the digest, never the token: printf %s "$TOKEN" | sha256sum',
            )
        if digest in tokens:
            raise ApiTokensConfigError(
                path, f"token {n} ({user}) repeats the digest of {tokens[digest].user}'s", "give each its own token"
            )
        tokens[digest] = Principal(user.strip(), None, role)
    return tokens


def is_loopback(host: str | None) -> bool:
    """
    >>> is_loopback("127.0.0.1"), is_loopback("::1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def identify(
    token: str | None, client_host: str | None, tokens: Tokens | None, host_header: str | None = None
) -> Principal:
    """Who is calling: the holder of a token from the operator's file, or, with no file, the local admin.

    The one lookup of callers, so that another source of users can replace it alone. Without a
    tokens file the request must come from this machine and name it (`host_header`): a web page
    whose own domain was pointed at 127.0.0.1 (DNS rebinding) names that domain, and is refused.
    """
    if tokens is None:
        named = urlsplit(f"//{host_header}").hostname if host_header else "localhost"
        if is_loopback(client_host) and is_loopback(named):
            return LOCAL
        raise NotAllowed(
            "this server has no API tokens file, so it serves only its own machine, by the address "
            f"127.0.0.1 or localhost; the operator can add one ({TOKENS_ENV} or {DEFAULT_TOKENS_PATH})"
        )
    if not token:
        raise NotAuthenticated("this server needs a token: send the header 'Authorization: Bearer TOKEN'")
    caller = tokens.get(hashlib.sha256(token.encode("utf-8")).hexdigest())
    if caller is None:
        raise NotAuthenticated("the bearer token is not one this server knows; ask its operator for one")
    return caller


_bearer = HTTPBearer(
    auto_error=False,
    description="A token from the operator's API tokens file. Not needed when the "
    "server has no tokens file and the caller is on its machine.",
)


class TooManyFailedSignIns(RagError):
    """A client address sent too many unknown tokens within the window: it is refused until the oldest ages out."""

    def __init__(self, failures: int, window_s: int, retry_after: int):
        self.retry_after = retry_after
        super().__init__(
            f"too many failed sign-ins from this address ({failures} unknown tokens in {window_s} s): "
            f"try again in {retry_after} s, with a token from this server's operator"
        )


class SignInThrottle:
    """Failed sign-ins (unknown bearer tokens) per client address, over a sliding window.

    After `max_failures` within `window_s` seconds the address is refused (429), whatever token it
    sends, until the oldest of those failures is `window_s` old. A request with no token is not a
    guess and is not counted. At most `max_addresses` addresses are remembered (the oldest forgotten),
    so a flood of addresses cannot fill memory.
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILED_SIGN_INS,
        window_s: int = SIGN_IN_WINDOW_S,
        clock=time.monotonic,
        max_addresses: int = 10_000,
    ):
        self.max_failures, self.window_s, self.clock, self.max_addresses = max_failures, window_s, clock, max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.get(address, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def failed(self, address: str | None) -> int:
        """Count one failure of `address`; the failures within the window, this one included."""
        now = self.clock()
        with self._lock:
            times = self._recent(str(address), now)
            times.append(now)
            self._failures[str(address)] = times
            self._failures.move_to_end(str(address))
            while len(self._failures) > self.max_addresses:
                self._failures.popitem(last=False)
            return len(times)

    def retry_after(self, address: str | None) -> int:
        """Seconds until `address` may try again; 0 when it may now."""
        now = self.clock()
        with self._lock:
            times = self._recent(str(address), now)
            if len(times) < self.max_failures:
                return 0
            return max(1, math.ceil(times[-self.max_failures] + self.window_s - now))


def caller_with(role: Role, action: str):
    """A route dependency: the caller, who must hold `role` or a higher one (`app.auth.require`; refusals are
    written to the audit log when the route changes documents). An unknown token is a failed sign-in:
    written to the audit log and counted against the client's address (`SignInThrottle`)."""

    def caller(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        state = request.app.state
        token = credentials.credentials if credentials else None
        address = request.client.host if request.client else None
        guessing = bool(token) and state.tokens is not None
        throttle: SignInThrottle = state.sign_in_throttle
        if guessing and (wait := throttle.retry_after(address)):
            raise TooManyFailedSignIns(throttle.max_failures, throttle.window_s, wait)
        try:
            who = identify(token, address, state.tokens, request.headers.get("host"))
        except NotAuthenticated:
            if guessing:
                failures = throttle.failed(address)
                detail = f"unknown bearer token on {request.method} {request.url.path}"
                if failures >= throttle.max_failures:
                    detail += f"; {failures} in {throttle.window_s} s: refused for {throttle.window_s} s"
                audit.record_failed_sign_in(state.audit_log, address, detail)
            raise
        if role >= Role.EDITOR:
            audit.require(state.audit_log, who, role, action)
        else:
            require(who, role, action)
        return who

    return caller
