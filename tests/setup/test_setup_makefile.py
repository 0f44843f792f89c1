"""The Makefile's set-up: every pip install goes through constraints.txt."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.conftest import REPO


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_every_pip_install_uses_the_constraints_file() -> None:
    # -n prints the commands without running them; -B prints them even when .venv is up to date
    commands = subprocess.run(["make", "-n", "-B", "setup"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    installs = [line for line in commands.splitlines() if "pip install" in line]
    assert any("torch==2.13.0" in line for line in installs)
    assert installs and all("-c constraints.txt" in line for line in installs), installs
