"""Roles, the roles file, `require`, the audit log, and the library's entry points refusing a reader.

The entry points are the real ones (`app.corpus.add_uploads`, `delete_document`) on a copy of the
session's corpus index: a reader is refused before any file or index changes, and the refusal is a
line in the audit log, whatever front end (or crafted call) made the request.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from app import audit
from app.auth import (
    LOCAL,
    Forbidden,
    Principal,
    Role,
    RolesConfigError,
    load_roles,
    parse_roles,
    principal_from_claims,
    require,
)
from app.backends import allowed_backends, parse_backends
from rag.index.layout import current_generation

ROOT = Path(__file__).resolve().parent.parent
READER = Principal("https://idp#r1", "rita@example.com", Role.READER)
EDITOR = Principal("https://idp#e1", "ed@example.com", Role.EDITOR)
NOTE = b"The Zephyrine battery plant near Lodz will open in 2027 and employ 3,400 workers.\n"


def test_roles_are_ordered_and_require_refuses_below():
    assert Role.READER < Role.EDITOR < Role.ADMIN
    require(EDITOR, Role.READER, "read")
    require(EDITOR, Role.EDITOR, "upload")
    with pytest.raises(
        Forbidden, match="rita@example.com is a reader and may not upload: that needs the editor role"
    ) as caught:
        require(READER, Role.EDITOR, "upload")
    assert caught.value.needed is Role.EDITOR and caught.value.principal is READER
    require(LOCAL, Role.ADMIN, "run evals")  # the single local user may do everything


ROLES = """
default = "none"
[admin]
emails = ["Ana@Example.com"]
[editor]
domains = ["research.example.com"]
claims = { groups = ["paracite-editors"] }
[reader]
domains = ["example.com"]
"""


@pytest.mark.parametrize(
    "claims, role",
    [
        ({"sub": "1", "email": "ana@example.com", "email_verified": True}, Role.ADMIN),
        ({"sub": "2", "email": "bo@research.example.com", "email_verified": True}, Role.EDITOR),
        (
            {"sub": "3", "email": "cy@example.com", "email_verified": True, "groups": ["staff", "paracite-editors"]},
            Role.EDITOR,
        ),
        # a single-valued claim
        ({"sub": "4", "email": "cy@example.com", "email_verified": True, "groups": "paracite-editors"}, Role.EDITOR),
        ({"sub": "5", "email": "CY@EXAMPLE.COM", "email_verified": True}, Role.READER),
        # the highest wins
        ({"sub": "6", "email": "ana@example.com", "email_verified": True, "groups": ["paracite-editors"]}, Role.ADMIN),
        ({"sub": "7", "email": "dee@mail.example.com", "email_verified": True}, None),  # a subdomain is another domain
        ({"sub": "8", "email": "eve@elsewhere.org", "email_verified": True}, None),
        # an unverified address counts for nothing
        ({"sub": "9", "email": "ana@example.com", "email_verified": False}, None),
        ({"sub": "10", "groups": ["Paracite-Editors"]}, None),  # claim values compare exactly
    ],
)
def test_the_roles_file_gives_the_highest_role_a_rule_grants(claims, role):
    roles = parse_roles(ROLES)
    assert roles.role_for(claims) == role
    who = principal_from_claims({"iss": "https://idp", **claims}, roles)
    assert (who.role if who else None) == role
    if who:
        assert who.user == f"https://idp#{claims['sub']}"


def test_without_a_roles_file_or_a_subject_nobody_is_let_in():
    claims = {"iss": "https://accounts.google.com", "sub": "42", "email": "anyone@gmail.com"}
    assert principal_from_claims(claims, None) is None
    assert principal_from_claims(claims, parse_roles('default = "reader"')).role is Role.READER
    assert principal_from_claims({"email": "anyone@gmail.com"}, parse_roles('default = "reader"')) is None


@pytest.mark.parametrize("verified", [None, False, "false", "False", 1, "yes"])
def test_an_email_the_provider_does_not_vouch_for_matches_no_email_or_domain_rule(verified):
    """nOAuth: a token whose email claim has no email_verified (or not exactly true) is not that person."""
    claims = {"iss": "https://idp", "sub": "m", "email": "ana@example.com"}
    if verified is not None:
        claims["email_verified"] = verified
    assert principal_from_claims(claims, parse_roles(ROLES)) is None
    by_default = parse_roles(ROLES.replace('"none"', '"reader"'))
    assert principal_from_claims(claims, by_default).role is Role.READER  # the default, no email rule


@pytest.mark.parametrize("verified", [True, "true", "TRUE"])
def test_a_verified_email_matches(verified):
    claims = {"iss": "https://idp", "sub": "a", "email": "ana@example.com", "email_verified": verified}
    assert principal_from_claims(claims, parse_roles(ROLES)).role is Role.ADMIN


def test_the_roles_file_can_pin_the_issuer():
    roles = parse_roles('issuers = ["https://idp.example.com"]\n' + ROLES.replace('"none"', '"reader"'))
    ana = {"sub": "a", "email": "ana@example.com", "email_verified": True, "groups": ["paracite-editors"]}
    assert principal_from_claims({"iss": "https://idp.example.com", **ana}, roles).role is Role.ADMIN
    for other in ("https://evil.example.com", "https://idp.example.com.evil.example", "", None):
        assert principal_from_claims({"iss": other, **ana}, roles) is None  # no rule, not even the default
    assert parse_roles(ROLES).issuers is None  # not pinned: any issuer, as before
    for bad in ('issuers = "https://idp"', "issuers = []", 'issuers = ["idp.example.com"]'):
        with pytest.raises(RolesConfigError, match="'issuers' must be a non-empty list of issuer URLs"):
            parse_roles(bad)
    example = load_roles(ROOT / ".paracite" / "roles.example.toml")
    assert example.issuers is None or all(i.startswith("https://") for i in example.issuers)


@pytest.mark.parametrize(
    "text, message",
    [
        ("[editor\nemails = []", "is not valid TOML"),
        ('[owner]\nemails = ["a@b.c"]', "unknown entry [owner]"),
        ('default = "superuser"', "'default' is wrong: not a role"),
        ('[editor]\nemail = ["a@b.c"]', "[editor] has an unknown field 'email'"),
        ('[editor]\nemails = "a@b.c"', "emails must be a list of non-empty strings"),
        ('[reader]\ndomains = ["@"]', "is not a mail domain"),
        ('[reader]\nclaims = { email = ["a@b.c"] }', "claim 'email' cannot grant a role"),
    ],
)
def test_a_bad_roles_file_says_what_and_how_to_fix(text, message):
    with pytest.raises(RolesConfigError, match="roles file <roles>: .*To fix it") as caught:
        parse_roles(text)
    assert message in str(caught.value)


def test_the_shipped_example_parses_and_a_named_missing_file_is_an_error(tmp_path, monkeypatch):
    roles = load_roles(ROOT / ".paracite" / "roles.example.toml")
    assert roles.default is None and set(roles.rules) == {Role.ADMIN, Role.EDITOR, Role.READER}
    monkeypatch.setenv("RAG_ROLES", str(tmp_path / "missing.toml"))
    with pytest.raises(RolesConfigError, match="cannot be read"):
        load_roles()


def test_llm_backends_are_an_admins_choice_unless_a_backend_says_otherwise():
    backends = parse_backends(
        '[backends.gpt]\nkind = "openai"\nmodel = "m"\naddress = "https://x/v1"\n\n'
        '[backends.smol]\nkind = "local"\nrole = "reader"\n'
    )
    assert list(allowed_backends(backends, READER)) == ["smol"]
    assert list(allowed_backends(backends, LOCAL)) == ["gpt", "smol"]
    from rag.errors import BackendsConfigError

    with pytest.raises(BackendsConfigError, match="field 'role', is wrong: not a role"):
        parse_backends('[backends.smol]\nkind = "local"\nrole = "boss"\n')


def test_the_audit_log_appends_private_json_lines(tmp_path):
    log = tmp_path / "logs" / "audit.jsonl"
    audit.record(log, EDITOR, "upload", "memo", detail="memo.txt")
    audit.record(log, EDITOR, "replace", "memo", detail="memo.txt")
    with pytest.raises(Forbidden):
        audit.require(log, READER, Role.EDITOR, "delete", doc="memo")
    with open(log, "a") as f:
        f.write('{"torn": ')  # a crash in the middle of a line
    entries = audit.read(log)
    assert [(e["action"], e["outcome"], e["email"], e["role"]) for e in entries] == [
        ("upload", "done", "ed@example.com", "editor"),
        ("replace", "done", "ed@example.com", "editor"),
        ("delete", "refused", "rita@example.com", "reader"),
    ]
    assert entries[0]["at"].endswith("Z") and entries[2]["detail"] == "needs editor"
    assert log.stat().st_mode & 0o777 == 0o600
    assert audit.added_by(log)["memo"]["action"] == "replace"
    audit.record(log, EDITOR, "delete", "memo")
    assert audit.added_by(log) == {}


@pytest.fixture()
def library(tmp_path, corpus_index):
    shutil.copytree(corpus_index, tmp_path / "index")
    (tmp_path / "corpus").mkdir()
    return tmp_path


def test_a_reader_is_refused_upload_and_delete_and_the_refusals_are_logged(library, embedder):
    from app.corpus import add_uploads, delete_document

    index, corpus, log = library / "index", library / "corpus", library / "audit.jsonl"
    generation = current_generation(index)
    with pytest.raises(Forbidden, match="may not upload"):
        add_uploads([("memo.txt", NOTE)], corpus, index, embedder, principal=READER, audit_log=log)
    with pytest.raises(Forbidden, match="may not delete"):
        delete_document(index, embedder, "caixin-commentary", corpus, principal=READER, audit_log=log)
    assert list(corpus.iterdir()) == [] and current_generation(index) == generation
    assert not list(library.glob(".paracite-staging-*"))
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["action"], e["doc"], e["outcome"], e["user"]) for e in lines] == [
        ("upload", "memo.txt", "refused", READER.user),
        ("delete", "caixin-commentary", "refused", READER.user),
    ]


def test_an_editors_upload_replace_and_delete_are_logged_with_who(library, embedder, monkeypatch):
    from app.corpus import add_uploads, delete_document

    index, corpus = library / "index", library / "corpus"
    monkeypatch.setenv("RAG_AUDIT_LOG", str(library / "team-audit.jsonl"))  # the default path follows the env
    add_uploads([("Memo.txt", NOTE)], corpus, index, embedder, principal=EDITOR)
    add_uploads([("Memo.txt", NOTE + b"\nIt will also build cells.\n")], corpus, index, embedder, principal=EDITOR)
    delete_document(index, embedder, "memo", corpus, principal=EDITOR)
    entries = audit.read(library / "team-audit.jsonl")
    assert [(e["action"], e["doc"], e["detail"], e["email"]) for e in entries] == [
        ("upload", "memo", "Memo.txt", EDITOR.email),
        ("replace", "memo", "Memo.txt", EDITOR.email),
        ("delete", "memo", "Memo.txt", EDITOR.email),
    ]
