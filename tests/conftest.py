"""Shared test fixtures.

Tests that need real data read it from ../shared beside the checkout (or $RPV2_SHARED). When the
data is missing the test fails loudly: a skipped test in CI is a hidden failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RPV2_SHARED", REPO_ROOT.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path inside ../shared; raises (not skips) when it does not exist."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data missing: {path} (set RPV2_SHARED to the shared/ directory)")
    return path


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> Path:
    """`rpv2 run` on the embedded sample with the RPv2 artifacts and exact dedup (fuzzy 0.8 is the
    sample's default), once per session: the filter, resample and export tests only read it. A module
    that needs another run defines its own ``sample_run``."""
    out = tmp_path_factory.mktemp("sample_run")
    subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--output", str(out / "out"),
         "--exact-dedup-state", str(out / "state"),
         "--artifacts", str(shared_path("groundtruth", "rpv2", "artifacts"))],
        check=True, cwd=REPO_ROOT, capture_output=True,
    )
    return out / "out"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def realdata() -> Path:
    return shared_path("realdata")


@pytest.fixture(scope="session")
def rpv2_groundtruth() -> Path:
    return shared_path("groundtruth", "rpv2")


def pytest_sessionfinish(session, exitstatus):
    _check_unit_tests_without_beam(session)


def _check_unit_tests_without_beam(session) -> None:
    """tests/unit tests the pure core (signals, dedup math, CCNet steps, readers, the step plan) without
    Apache Beam, in seconds: a session of unit tests alone fails if any of them imported Beam."""
    import sys

    items = getattr(session, "items", [])
    only_unit = bool(items) and all("/tests/unit/" in str(item.fspath).replace("\\", "/") for item in items)
    if only_unit and "apache_beam" in sys.modules:
        session.exitstatus = 1
        print("\nunit tests imported apache_beam: move the test to tests/integration, or keep Beam out of "
              "the code it tests", file=sys.stderr)

