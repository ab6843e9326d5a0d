"""`sharedcare mpi relink` and `mpi status` find the matcher among the write hooks and work on a store."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from conftest import make_patient

from sharedcare.app import build
from sharedcare.cli import main
from sharedcare.settings import Settings

NHS_A = "9990000018"


def test_relink_and_status_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    server = build(Settings(db=db, auth_required=False))
    try:
        hooks = list(server.repo.write_hooks)
        server.repo.write_hooks.clear()  # loaded with matching off, as a bulk load might be
        for org, nhs in (("A81001", NHS_A), ("RX1", NHS_A), ("LA1", None)):
            server.repo.create("Patient", make_patient(org, nhs=nhs))
        server.repo.write_hooks[:] = hooks
    finally:
        server.close()
    runner = CliRunner()
    relinked = runner.invoke(main, ["mpi", "relink", "--db", db])
    assert relinked.exit_code == 0, relinked.output
    assert "3 records" in relinked.output and "1 persons" in relinked.output
    status = runner.invoke(main, ["mpi", "status", "--db", db])
    assert status.exit_code == 0, status.output
    assert status.output.startswith("3 source Patients, 1 persons, 0 open review items")
