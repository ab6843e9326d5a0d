"""Command line for security: register clients and users, print an operator token, verify the audit trail.

sharedcare client add gp-feed --kind backend --org B86001 --jwks gp-feed.jwks.json --scope "system/*.cruds"
sharedcare client add demo-app --kind app --redirect-uri http://localhost:8000/callback
sharedcare user add drsmith --role clinician --org B86001 --name "Dr Ann Smith" --password-env PW
sharedcare user add pat1 --role patient --patient 1234
sharedcare token [--db URL] [--scope "system/*.*"] [--role administrator]
sharedcare audit verify [--db URL]
sharedcare serve --dev-open          # no authentication: development only, announced loudly
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from sharedcare.settings import Settings

DB_HELP = "Database URL (default: SHAREDCARE_DB or sqlite:///sharedcare.db)."


@contextmanager
def _store(db: str | None) -> Iterator[Any]:
    """The store alone (no server): enough to register, sign and verify."""
    from sharedcare.app import open_store
    from sharedcare.auth.wiring import init_schema
    from sharedcare.fhir.search_parameters import SearchParameterRegistry

    settings = Settings.from_env(db=db)
    store = open_store(settings.db, SearchParameterRegistry.load(), settings)
    try:
        init_schema(store)
        yield store
    finally:
        store.close()


# --- clients ------------------------------------------------------------------------------------------------


@click.group()
def client() -> None:
    """Register OAuth clients: organisations' systems (backend) and SMART apps (app)."""


@client.command("add")
@click.argument("client_id")
@click.option("--kind", type=click.Choice(["backend", "app"]), required=True)
@click.option("--org", default=None, help="ODS code of the organisation the client acts for.")
@click.option("--role", default=None, help="backend: system (default), analyst or administrator.")
@click.option("--purpose", type=click.Choice(["direct-care", "secondary-use"]), default=None)
@click.option("--scope", "scopes", default=None, help="Scopes the client may be granted (space separated).")
@click.option("--jwks", "jwks_file", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--jwks-uri", default=None, help="URL of the client's JWKS (instead of --jwks).")
@click.option("--redirect-uri", "redirect_uris", multiple=True, help="app: a registered redirect URI.")
@click.option("--secret", is_flag=True, help="app: make it confidential and print a new client secret.")
@click.option("--name", default=None)
@click.option("--rate-limit", type=int, default=None, help="Requests per second for this client.")
@click.option("--db", default=None, help=DB_HELP)
def client_add(
    client_id: str,
    kind: str,
    org: str | None,
    role: str | None,
    purpose: str | None,
    scopes: str | None,
    jwks_file: str | None,
    jwks_uri: str | None,
    redirect_uris: tuple[str, ...],
    secret: bool,
    name: str | None,
    rate_limit: int | None,
    db: str | None,
) -> None:
    """Register (or replace) a client."""
    from sharedcare.auth.passwords import hash_password
    from sharedcare.auth.registry import APP_SCOPES, BACKEND_SCOPES, Client, Registry, RegistryError

    role = role or ("system" if kind == "backend" else "app")
    purpose = purpose or ("secondary-use" if role == "analyst" else "direct-care")
    jwks = None
    if jwks_file:
        with open(jwks_file, encoding="utf-8") as f:
            jwks = json.load(f)
    plain = secrets.token_urlsafe(32) if secret else None
    record = Client(
        client_id,
        kind,
        role,
        purpose,
        scopes or (BACKEND_SCOPES if kind == "backend" else APP_SCOPES),
        org,
        name,
        jwks,
        jwks_uri,
        redirect_uris,
        hash_password(plain) if plain else None,
        rate_limit,
    )
    with _store(db) as store:
        try:
            Registry(store).add_client(record)
        except RegistryError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(f"client {client_id} registered ({kind}, role {role}, scopes: {record.scopes})")
    if plain:
        click.echo(f"client secret (shown once): {plain}")


@client.command("list")
@click.option("--db", default=None, help=DB_HELP)
def client_list(db: str | None) -> None:
    from sharedcare.auth.registry import Registry

    with _store(db) as store:
        registry = Registry(store)
        for cid in registry.clients():
            c = registry.client(cid)
            assert c is not None
            click.echo(f"{cid}\t{c.kind}\t{c.role}\t{c.organisation or '-'}\t{c.scopes}")


# --- users --------------------------------------------------------------------------------------------------


@click.group()
def user() -> None:
    """Register user accounts: people with one role and organisation."""


@user.command("add")
@click.argument("username")
@click.option(
    "--role", required=True, help="clinician, nurse, social-care, administrator, analyst, privacy-officer or patient."
)
@click.option("--org", default=None, help="ODS code of the user's organisation.")
@click.option("--name", default=None)
@click.option("--patient", default=None, help="patient users: the id of their Patient resource.")
@click.option("--fhir-user", default=None, help="e.g. Practitioner/123: the user's own resource.")
@click.option("--password-env", default=None, help="Read the password from this environment variable.")
@click.option("--external", default=None, help="Link to an OpenID Connect identity: ISSUER|SUBJECT.")
@click.option("--db", default=None, help=DB_HELP)
def user_add(
    username: str,
    role: str,
    org: str | None,
    name: str | None,
    patient: str | None,
    fhir_user: str | None,
    password_env: str | None,
    external: str | None,
    db: str | None,
) -> None:
    """Register (or replace) a user; prompts for the password unless --password-env or --external is given."""
    from sharedcare.auth.registry import Registry, RegistryError, User

    password = os.environ.get(password_env, "") if password_env else None
    if password is None and not external:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _store(db) as store:
        try:
            Registry(store).add_user(User(username, role, org, name, fhir_user, patient, None, external), password)
        except RegistryError as exc:
            raise click.UsageError(str(exc)) from None
    click.echo(f"user {username} registered ({role}{', ' + org if org else ''})")


@user.command("list")
@click.option("--db", default=None, help=DB_HELP)
def user_list(db: str | None) -> None:
    from sharedcare.auth.registry import Registry

    with _store(db) as store:
        registry = Registry(store)
        for name in registry.users():
            u = registry.user(name)
            assert u is not None
            click.echo(f"{name}\t{u.role}\t{u.organisation or '-'}\t{u.patient or '-'}")


# --- operator token -------------------------------------------------------------------------------------------


@click.command()
@click.option("--db", default=None, help=DB_HELP)
@click.option("--scope", default="system/*.*", show_default=True)
@click.option("--role", default="administrator", show_default=True, help="administrator (operator), system or analyst.")
@click.option("--org", default=None, help="ODS code to act for (role system).")
@click.option("--ttl", type=int, default=3600, show_default=True, help="Lifetime in seconds.")
def token(db: str | None, scope: str, role: str, org: str | None, ttl: int) -> None:
    """Print a bearer token for this store, for operators and scripts (audited as client sharedcare-cli)."""
    from sharedcare.access.roles import SYSTEMS
    from sharedcare.access.scopes import InvalidScope, ScopeSet
    from sharedcare.auth.keys import KeyRing
    from sharedcare.auth.registry import Registry
    from sharedcare.auth.tokens import TokenService

    if role not in SYSTEMS:
        raise click.UsageError(f"--role must be one of {', '.join(SYSTEMS)}")
    try:
        scopes = ScopeSet.parse(scope)
    except InvalidScope as exc:
        raise click.UsageError(str(exc)) from None
    purpose = "secondary-use" if role == "analyst" else "direct-care"
    with _store(db) as store:
        keys = KeyRing.load(store)
        service = TokenService(store, keys, Registry(store))
        subject = f"operator:{os.environ.get('USER', 'unknown')}"
        text, _ = service.issue(
            kind="system",
            subject=subject,
            role=role,
            client_id="sharedcare-cli",
            scopes=scopes,
            purpose=purpose,
            organisation=org,
            seconds=ttl,
        )
    sys.stdout.write(text + "\n")


@click.group()
def keys() -> None:
    """The server's signing keys."""


@keys.command("rotate")
@click.option("--db", default=None, help=DB_HELP)
def keys_rotate(db: str | None) -> None:
    """Add a new signing key; tokens signed by older keys stay valid until they expire."""
    from sharedcare.auth.keys import rotate

    with _store(db) as store:
        click.echo(f"new signing key {rotate(store)}")


# --- audit ---------------------------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
@click.option("--db", default=None, help=DB_HELP)
@click.option("--anchor", default=None, help="A head recorded earlier (SEQ:HASH) that must still be in the chain.")
def audit_verify(db: str | None, anchor: str | None) -> None:
    """Recompute the hash chain; exit 1 and list every problem if anything was changed, removed or reordered."""
    from sharedcare.audit.log import AuditLog
    from sharedcare.auth.keys import KeyRing

    with _store(db) as store:
        keys = KeyRing.load(store)
        log = AuditLog(store.dialect, store.lock_key, keys.sign_bytes, keys.check_bytes)
        with store.writing() as cur:
            sealed = log.seal_in(cur)
        with store.reading() as cur:
            report = log.verify(cur)
            problems = list(report.problems)
            if anchor:
                problems += _check_anchor(cur, store, anchor)
    head = f"{report.head[0]}:{report.head[1]}" if report.head else "empty"
    click.echo(f"audit trail: {report.rows} events, head {head}" + (f" ({sealed} sealed now)" if sealed else ""))
    for problem in problems:
        click.echo(f"PROBLEM: {problem}")
    if problems:
        click.echo(f"audit trail FAILED verification: {len(problems)} problem(s)")
        sys.exit(1)
    click.echo("audit trail verified: intact")


def _check_anchor(cur: Any, store: Any, anchor: str) -> list[str]:
    seq, _, digest = anchor.partition(":")
    if not seq.isdigit():
        return [f"--anchor must be SEQ:HASH, got {anchor!r}"]
    cur.execute(store.dialect.sql("SELECT hash FROM audit_log WHERE seq = ?"), (int(seq),))
    row = cur.fetchone()
    if row is None or row[0] != digest:
        return [f"the anchored head {seq} is no longer in the chain (history rewritten)"]
    return []


# --- serve --dev-open -------------------------------------------------------------------------------------------


def add_dev_open(serve: click.Command) -> None:
    """Give `serve` a --dev-open flag: the development open mode, by setting SHAREDCARE_AUTH_REQUIRED=false."""
    original = serve.callback
    assert original is not None

    @functools.wraps(original)
    def callback(*args: Any, dev_open: bool = False, **kwargs: Any) -> Any:
        if dev_open:
            os.environ["SHAREDCARE_AUTH_REQUIRED"] = "false"
            click.secho(
                "WARNING: --dev-open: NO AUTHENTICATION. Development only; never with real data.",
                fg="red",
                bold=True,
                err=True,
            )
        return original(*args, **kwargs)

    serve.params.append(
        click.Option(["--dev-open"], is_flag=True, help="Development only: no authentication (announced loudly).")
    )
    serve.callback = callback
