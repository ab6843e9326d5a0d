"""Every setting and every CLI command is documented in the README."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from sharedcare.cli import main
from sharedcare.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_setting_is_in_the_readme() -> None:
    missing = [f.name for f in fields(Settings) if f"`{f.name}`" not in README]
    assert not missing, f"settings missing from README.md: {missing}"


def test_every_command_is_in_the_readme() -> None:
    missing = [name for name in main.commands if f"sharedcare {name}" not in README and f"`{name}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"
