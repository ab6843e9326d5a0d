"""`sharedcare token`, `client add`, `user add`: operators register clients and users and get a token."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from joserfc.jwk import RSAKey
from starlette.testclient import TestClient
from support.security import bearer, secure_settings

from sharedcare.app import build
from sharedcare.cli import main


def test_operator_token_works_against_a_server_on_the_same_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    printed = CliRunner().invoke(main, ["token", "--db", url])
    assert printed.exit_code == 0, printed.output
    tok = printed.output.strip()
    assert tok.count(".") == 2
    narrow = CliRunner().invoke(main, ["token", "--db", url, "--scope", "system/Patient.rs"]).output.strip()
    server = build(secure_settings(url))
    try:
        with TestClient(server.asgi) as client:
            created = client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(tok))
            assert created.status_code == 201
            pid = created.json()["id"]
            assert client.get(f"/fhir/Patient/{pid}", headers=bearer(narrow)).status_code == 200
            assert (
                client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(narrow)).status_code
                == 403
            )
    finally:
        server.close()
    bad = CliRunner().invoke(main, ["token", "--db", url, "--scope", "system/*.zz"])
    assert bad.exit_code != 0


def test_register_clients_and_users(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    jwks = tmp_path / "feed.jwks.json"
    jwks.write_text(json.dumps({"keys": [RSAKey.generate_key(2048).as_dict(private=False)]}))
    runner = CliRunner()
    out = runner.invoke(
        main,
        [
            "client",
            "add",
            "gp-feed",
            "--kind",
            "backend",
            "--org",
            "A81001",
            "--jwks",
            str(jwks),
            "--scope",
            "system/*.cruds",
            "--db",
            url,
        ],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(
        main, ["client", "add", "web", "--kind", "app", "--redirect-uri", "https://a/cb", "--secret", "--db", url]
    )
    assert out.exit_code == 0 and "client secret (shown once)" in out.output
    assert runner.invoke(main, ["client", "add", "x", "--kind", "backend", "--db", url]).exit_code != 0  # no keys
    out = runner.invoke(
        main,
        ["user", "add", "drsmith", "--role", "clinician", "--org", "A81001", "--password-env", "PW", "--db", url],
        env={"PW": "pw"},
    )
    assert out.exit_code == 0, out.output
    assert (
        runner.invoke(
            main, ["user", "add", "x", "--role", "wizard", "--password-env", "PW", "--db", url], env={"PW": "pw"}
        ).exit_code
        != 0
    )
    listed = runner.invoke(main, ["client", "list", "--db", url]).output
    assert "gp-feed\tbackend\tsystem\tA81001" in listed and "web\tapp" in listed
    assert "drsmith\tclinician\tA81001" in runner.invoke(main, ["user", "list", "--db", url]).output


def test_serve_has_a_dev_open_flag() -> None:
    out = CliRunner().invoke(main, ["serve", "--help"])
    assert "--dev-open" in out.output
