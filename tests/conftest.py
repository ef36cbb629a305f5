"""Shared test fixtures.

Tests that need real data read it from ../shared beside the checkout (or $RPV2_SHARED). When the
data is missing the test fails loudly: a skipped test in CI is a hidden failure.
"""

from __future__ import annotations

import os
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
def shared_dir() -> Path:
    return shared_path()


@pytest.fixture(scope="session")
def realdata() -> Path:
    return shared_path("realdata")


@pytest.fixture(scope="session")
def rpv2_groundtruth() -> Path:
    return shared_path("groundtruth", "rpv2")


# The test process runs many Beam pipelines in-process. Native libraries they load (Beam's gRPC and
# Arrow thread pools among them) were seen to abort the interpreter's teardown under load ("terminate
# called without an active exception", exit 134) after all work was done; pipeline.cli.console_main
# guards the `rpv2` command against it, and this does the same for the test run: once pytest has
# finished and reported, the process exits with pytest's own status without that teardown.
_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session, exitstatus):
    _check_unit_tests_without_beam(session)
    _EXIT_STATUS.append(int(session.exitstatus))


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


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if not _EXIT_STATUS or os.environ.get("RPV2_PYTEST_NORMAL_EXIT"):
        return
    from pipeline.cli import exit_without_teardown

    exit_without_teardown(_EXIT_STATUS[-1])
