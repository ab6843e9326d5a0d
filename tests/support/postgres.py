"""Start a throwaway PostgreSQL 15 server for the tests: initdb + pg_ctl, as user `postgres` when run as root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass


def _bin_dir() -> str:
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install Debian's postgresql"
        )
    return os.path.dirname(candidates[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    root: str
    port: int
    bindir: str

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def stop(self) -> None:
        try:
            self._run(f"{self.bindir}/pg_ctl", "-D", f"{self.root}/data", "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PgServer:
    bindir = _bin_dir()
    root = tempfile.mkdtemp(prefix="sharedcare-pg-")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = PgServer(root, _free_port(), bindir)
    server._run(
        f"{bindir}/initdb", "-D", f"{root}/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
    )
    opts = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    server._run(f"{bindir}/pg_ctl", "-D", f"{root}/data", "-o", opts, "-l", f"{root}/log", "-w", "start")
    return server
