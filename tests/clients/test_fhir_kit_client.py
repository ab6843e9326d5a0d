"""The npm fhir-kit-client against the running server (needs node and npm; the package comes from the registry)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def node_client() -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the fhir-kit-client test")
    if not (HERE / "node_modules" / "fhir-kit-client").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=HERE, check=True, timeout=300)
    return HERE / "fhir_kit_client.mjs"


def test_fhir_kit_client(live_base: str, node_client: Path) -> None:
    done = subprocess.run(["node", str(node_client), live_base], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "all checks passed" in done.stdout
