"""`sharedcare serve --workers 2`: one port served by a primary and a secondary process, as a user runs it.

The secondary must really serve (requests are answered while the primary is frozen), see the primary's writes,
come back when it dies, and go when the primary goes, even when the primary is killed without warning.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from crashkit import FHIR_JSON, Proc, free_port, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc to find the processes")


def children(pid: int) -> list[int]:
    """Child processes of `pid`, whichever of its threads started them."""
    return [int(x) for task in Path(f"/proc/{pid}/task").iterdir() for x in (task / "children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return stat[0] != "Z"


def patient(family: str) -> dict:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Ann"]}], "gender": "female"}


@pytest.fixture
def two(tmp_path: Path):
    proc = Proc(["serve", "--db", f"sqlite:///{tmp_path / 'w.db'}", "--workers", "2"], free_port(), tmp_path / "log")
    proc.start()
    assert proc.popen is not None
    wait_until(lambda: len(children(proc.popen.pid)) == 1, 30, "no secondary process")
    secondary = children(proc.popen.pid)[0]
    wait_until(lambda: _secondary_answers(proc, secondary), 30, "the secondary never answered")
    yield proc, secondary
    proc.stop()


def _secondary_answers(proc: Proc, secondary: int) -> bool:
    """Freeze the primary: only the secondary can answer (on the connections the kernel gives it)."""
    assert proc.popen is not None
    os.kill(proc.popen.pid, signal.SIGSTOP)
    try:
        client = _secondary_client(proc)
        if client is None:
            return False
        client.close()
        return True
    finally:
        os.kill(proc.popen.pid, signal.SIGCONT)


def _secondary_client(proc: Proc) -> httpx.Client | None:
    """With the primary frozen: a keep-alive connection that the secondary answers. Each process listens on its own
    socket (SO_REUSEPORT) and the kernel spreads new connections over them, so try a few."""
    for _ in range(30):
        client = httpx.Client(base_url=proc.base, timeout=1.0)
        try:
            if client.get("/fhir/metadata").status_code == 200:
                return client
        except httpx.HTTPError:
            pass  # this connection went to the frozen primary
        client.close()
    return None


def test_both_processes_serve_the_same_store(two: tuple[Proc, int]) -> None:
    proc, secondary = two
    assert proc.popen is not None
    created = httpx.post(f"{proc.base}/fhir/Patient", json=patient("Shared"), headers=FHIR_JSON, timeout=10)
    assert created.status_code == 201, created.text
    location = created.headers["location"].split("/_history")[0]
    os.kill(proc.popen.pid, signal.SIGSTOP)  # only the secondary may answer now
    try:
        client = _secondary_client(proc)
        assert client is not None, "the secondary did not answer"
        try:
            got = client.get(location, timeout=5)
            assert got.status_code == 200 and got.json()["name"][0]["family"] == "Shared"
            updated = client.put(
                location, json={**got.json(), "gender": "other"}, headers=FHIR_JSON, timeout=10
            )  # a write through the secondary: its audit event joins the same chain
            assert updated.status_code == 200, updated.text
        finally:
            client.close()
    finally:
        os.kill(proc.popen.pid, signal.SIGCONT)
    for _ in range(20):  # new connections land on either process: all see the secondary's write
        with httpx.Client() as client:
            assert client.get(location, timeout=5).json()["gender"] == "other"
    proc.stop()
    verified = subprocess.run(
        [sys.executable, "-m", "sharedcare", "audit", "verify", "--db", proc.args[2]], capture_output=True, text=True
    )  # both processes sealed events into the one chain, and it holds together
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_dead_secondary_is_replaced_and_all_stop_with_the_primary(two: tuple[Proc, int]) -> None:
    proc, secondary = two
    assert proc.popen is not None
    os.kill(secondary, signal.SIGKILL)
    wait_until(lambda: any(p != secondary and alive(p) for p in children(proc.popen.pid)), 30, "not replaced")
    replacement = next(p for p in children(proc.popen.pid) if p != secondary)
    wait_until(lambda: _secondary_answers(proc, replacement), 30, "the replacement never answered")
    proc.stop()
    wait_until(lambda: not alive(replacement), 30, "the secondary outlived its primary")


def test_a_secondary_stops_when_its_primary_is_killed(two: tuple[Proc, int]) -> None:
    proc, secondary = two
    proc.kill()  # kill -9: no chance to stop the secondaries
    deadline = time.monotonic() + 30
    while alive(secondary) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(secondary), "an orphaned secondary kept serving after its primary died"
