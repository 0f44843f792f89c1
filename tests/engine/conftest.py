"""Fixtures for the engine tests: a clean call log and an executor over the test nodes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the helper module lives beside this file; test modules import it as `enginetest_nodes`
sys.path.insert(0, str(Path(__file__).resolve().parent))

import enginetest_nodes as tn  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_call_log():
    tn.CALLS.clear()
    tn.WAITING.clear()
    yield
    tn.CALLS.clear()


@pytest.fixture
def executor(tmp_path):
    """(Executor, Recorder) over the native test nodes plus the two basic V1 nodes."""
    return tn.make_executor(tmp_path, v1={"V1Const": tn.V1Const, "V1Show": tn.V1Show})
