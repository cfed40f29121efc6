"""Who is asking, and what they may do: a `Principal` with a `Role`, the operator's roles file, `require`.

Three roles, each allowed what the one before it may do, and more:
- reader: ask, read and export;
- editor: also upload, replace and delete documents;
- admin: also run evals and choose among the LLM backends the operator configured.

A front end (the Streamlit UI, an HTTP API) turns a sign-in into a `Principal`, with
`principal_from_claims` (the identity provider's ID-token claims and the roles file), and passes
it to the library's entry points, which call `require` before they change anything. Without
sign-in (one local user) the principal is `LOCAL`, an admin.

The roles file is TOML, at $RAG_ROLES or else `.paracite/roles.toml` (relative to the working
directory); `.paracite/roles.example.toml` is a commented example:

    default = "none"                  # the role of a signed-in user no rule names: none, reader, editor, admin
    issuers = ["https://accounts.google.com"]   # optional: only ID tokens from these issuers count

    [admin]
    emails = ["ana@example.com"]

    [editor]
    domains = ["research.example.com"]
    claims = { groups = ["paracite-editors"] }   # an ID-token claim, and the values that grant the role

    [reader]
    domains = ["example.com"]

A user gets the highest role any rule gives them. Emails and domains are compared without case;
a domain matches the part after the "@" exactly (example.com does not cover mail.example.com).
An email counts for email and domain rules only when the provider vouches for it
(`email_verified` true): a claim without it, as some providers send for addresses a user typed
in and never confirmed, matches none ("nOAuth"). With `issuers`, a token from any other issuer
matches no rule and gets no default: nobody is let in through another provider.

Not handled: groups fetched from a directory at sign-in time (only claims in the ID token count),
per-document permissions, and sessions revoked when the roles file changes (the file is read on
every page run, so a change applies at the user's next click).
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from app.operator_files import operator_file
from rag.errors import RagError

DEFAULT_PATH = Path(".paracite") / "roles.toml"
ROLES_ENV = "RAG_ROLES"
NO_ROLE = "none"
_RULE_FIELDS = {"emails", "domains", "claims"}


class Role(enum.IntEnum):
    """Ordered: READER < EDITOR < ADMIN, so `principal.role >= Role.EDITOR` reads as it says."""

    READER = 1
    EDITOR = 2
    ADMIN = 3

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        """A role from its name, in any case.

        >>> Role.parse("Editor")
        <Role.EDITOR: 2>
        """
        try:
            return cls[str(name).strip().upper()]
        except KeyError:
            raise ValueError(f"not a role: {name!r}; use one of {', '.join(str(r) for r in cls)}") from None


@dataclass(frozen=True)
class Principal:
    """A signed-in user (or the local one): a stable id, the email to show, and the role."""

    user: str  # stable per person: the provider's issuer and subject, or "local"
    email: str | None
    role: Role

    @property
    def label(self) -> str:
        """What the Library and the audit log show for this person."""
        return self.email or self.user


LOCAL = Principal("local", None, Role.ADMIN)  # the single user of an app without sign-in


class Forbidden(RagError):
    """A principal asked for something its role does not allow."""

    def __init__(self, principal: Principal, needed: Role, action: str):
        self.principal = principal
        self.needed = needed
        self.action = action
        super().__init__(
            f"{principal.label} is a {principal.role} and may not {action}: that needs the {needed} "
            f"role. Ask the operator to give it in the roles file (SECURITY.md, 'The roles file')"
        )


class RolesConfigError(RagError):
    """The operator's roles file is unreadable or has a bad entry."""

    def __init__(self, path: str | Path, problem: str, fix: str):
        self.path = str(path)
        super().__init__(f"roles file {self.path}: {problem}. To fix it, {fix}")


def require(principal: Principal, role: Role, action: str) -> None:
    """Raise `Forbidden` unless `principal` holds `role` or a higher one; `action` says what was refused.

    >>> require(LOCAL, Role.ADMIN, "run evals")
    >>> require(Principal("u1", "r@example.com", Role.READER), Role.EDITOR, "upload documents")
    Traceback (most recent call last):
    ...
    app.auth.Forbidden: r@example.com is a reader and may not upload documents: that needs the editor role. ...
    """
    if principal.role < role:
        raise Forbidden(principal, role, action)


@dataclass(frozen=True)
class Rule:
    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    claims: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def matches(self, claims: Mapping[str, object]) -> bool:
        email = _verified_email(claims)
        if email and (email in self.emails or email.rpartition("@")[2] in self.domains):
            return True
        for name, wanted in self.claims.items():
            if _claim_values(claims.get(name)) & wanted:
                return True
        return False


@dataclass(frozen=True)
class Roles:
    """The parsed roles file: one rule per role, the role of everyone else (None: refused), and the issuers
    whose tokens count (None: any)."""

    rules: Mapping[Role, Rule]
    default: Role | None = None
    issuers: frozenset[str] | None = None

    def role_for(self, claims: Mapping[str, object]) -> Role | None:
        """The highest role a rule gives these claims, else the default (None: no access)."""
        if self.issuers is not None and str(claims.get("iss") or "").strip() not in self.issuers:
            return None
        for role in sorted(self.rules, reverse=True):
            if self.rules[role].matches(claims):
                return role
        return self.default


def principal_from_claims(claims: Mapping[str, object], roles: Roles | None) -> Principal | None:
    """The principal for a signed-in user's ID-token claims, or None when no rule (and no default) lets them in.

    No roles file (`roles` None) lets nobody in: signing in through a public provider (any Google
    account) must not be enough. The user id joins the issuer and the subject, which OpenID Connect
    guarantees stable and unique together; an email can change hands.

    >>> roles = parse_roles('[editor]\\ndomains = ["example.com"]')
    >>> principal_from_claims({"iss": "https://idp", "sub": "42", "email": "Ed@Example.com", "email_verified": True},
    ...                       roles)
    Principal(user='https://idp#42', email='ed@example.com', role=<Role.EDITOR: 2>)
    """
    if roles is None:
        return None
    sub = str(claims.get("sub") or "").strip()
    if not sub:
        return None
    role = roles.role_for(claims)
    if role is None:
        return None
    issuer = str(claims.get("iss") or "").strip()
    email = str(claims.get("email") or "").strip().lower() or None
    return Principal(f"{issuer}#{sub}" if issuer else sub, email, role)


def roles_path() -> Path | None:
    """$RAG_ROLES, else .paracite/roles.toml when it exists, else None."""
    return operator_file(ROLES_ENV, DEFAULT_PATH)


def load_roles(path: str | Path | None = None) -> Roles | None:
    """The roles file, or None when there is none. A file named by $RAG_ROLES that is missing is an error."""
    path = Path(path) if path is not None else roles_path()
    if path is None:
        return None
    try:
        text = path.read_text("utf-8")
    except OSError as e:
        raise RolesConfigError(
            path,
            f"cannot be read ({e.strerror or e})",
            f"create it (see .paracite/roles.example.toml) or unset {ROLES_ENV}",
        ) from None
    except UnicodeDecodeError:
        raise RolesConfigError(path, "is not UTF-8 text", "save it as UTF-8") from None
    return parse_roles(text, path)


def parse_roles(text: str, source: str | Path = "<roles>") -> Roles:
    """Parse and check a roles file; every problem names the entry and says how to fix it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RolesConfigError(
            source, f"is not valid TOML ({e})", "fix the syntax (see .paracite/roles.example.toml)"
        ) from None
    names = ", ".join(str(r) for r in Role)
    default_name = data.pop("default", NO_ROLE)
    if not isinstance(default_name, str):
        raise RolesConfigError(
            source,
            f"'default' must be a string, not {type(default_name).__name__}",
            f'write default = "{NO_ROLE}" or one of {names}',
        )
    if default_name.strip().lower() == NO_ROLE:
        default = None
    else:
        try:
            default = Role.parse(default_name)
        except ValueError as e:
            raise RolesConfigError(source, f"'default' is wrong: {e}", f'use "{NO_ROLE}" or one of {names}') from None
    issuers = _issuers(data.pop("issuers", None), source)
    rules = {}
    for name, entry in data.items():
        try:
            role = Role.parse(name)
        except ValueError:
            raise RolesConfigError(
                source, f"has an unknown entry [{name}]", f"name a table after a role ({names}), or set default"
            ) from None
        rules[role] = _rule(role, entry, source)
    return Roles(rules, default, issuers)


def _issuers(value, source) -> frozenset[str] | None:
    """The `issuers` entry: None when absent, else the exact issuer URLs (`iss`) whose tokens count."""
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v.strip().startswith(("https://", "http://")) for v in value)
    ):
        raise RolesConfigError(
            source,
            "'issuers' must be a non-empty list of issuer URLs",
            'write issuers = ["https://accounts.google.com"], the "iss" of your provider\'s tokens',
        )
    return frozenset(v.strip() for v in value)


def _rule(role: Role, entry, source) -> Rule:
    def bad(problem: str, fix: str) -> RolesConfigError:
        return RolesConfigError(source, f"[{role}] {problem}", fix)

    if not isinstance(entry, dict):
        raise bad("is not a table", f"write it as [{role}] with emails = [...], domains = [...] or claims = {{...}}")
    extra = sorted(set(entry) - _RULE_FIELDS)
    if extra:
        raise bad(f"has an unknown field {extra[0]!r}", f"use only {', '.join(sorted(_RULE_FIELDS))}")

    def strings(value, what: str) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise bad(f"{what} must be a list of non-empty strings", f'write {what} = ["..."]')
        return frozenset(v.strip().lower() for v in value)

    emails = strings(entry.get("emails", []), "emails")
    domains = frozenset(d.lstrip("@") for d in strings(entry.get("domains", []), "domains"))
    for domain in domains:
        if "@" in domain or "." not in domain:
            raise bad(f"domain {domain!r} is not a mail domain", 'write the part after the "@", e.g. "example.com"')
    claims = entry.get("claims", {})
    if not isinstance(claims, dict):
        raise bad("claims must be a table of claim = [values]", 'write claims = { groups = ["paracite-editors"] }')
    checked = {}
    for name, values in claims.items():
        if name in ("email", "sub", "iss"):
            raise bad(f"claim {name!r} cannot grant a role", "use emails or domains for addresses")
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            raise bad(f"claim {name!r} must list strings", f'write claims = {{ {name} = ["value"] }}')
        checked[name] = frozenset(values)  # claim values compare exactly: group names are case-sensitive
    return Rule(emails, domains, checked)


def _verified_email(claims: Mapping[str, object]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    verified = claims.get("email_verified")
    if verified is not True and not (isinstance(verified, str) and verified.strip().lower() == "true"):
        return None  # absent, false, or anything else: the provider does not vouch for the address
    return email.strip().lower()


def _claim_values(value: object) -> frozenset[str]:
    """A claim as a set of strings: a list claim (groups, roles) or a single value."""
    if isinstance(value, (list, tuple)):
        return frozenset(str(v) for v in value)
    if value is None or isinstance(value, dict):
        return frozenset()
    return frozenset({str(value)})
