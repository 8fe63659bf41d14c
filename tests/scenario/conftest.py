"""Fixtures of the scenario-format tests: a private copy of the tiny scenario."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.scenario import Scenario
from router.scenario import read_scenario

TINY = Path(__file__).parent.parent / "data" / "tiny"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A copy of tests/data/tiny that a test may corrupt."""
    return Path(shutil.copytree(TINY, tmp_path / "tiny"))


@pytest.fixture(scope="session")
def tiny_scenario() -> Scenario:
    """The tiny scenario as read (immutable, so shared by every test)."""
    return read_scenario(TINY)
