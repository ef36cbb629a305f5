"""Packaging: a plain wheel install (not editable) carries configs/ and the sample and runs the pipeline
as the checkout does; Beam is pinned once and the worker image follows the pin."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT


def _parquet_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob("**/*.parquet"))}


def test_a_plain_wheel_install_carries_configs_and_runs_the_sample_as_the_checkout(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q", "-w", str(wheels)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("rpv2-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=600)
    assert (target / "pipeline" / "configs" / "default.yaml").is_file()
    assert list((target / "pipeline" / "configs" / "runners").glob("*.yaml"))
    assert list((target / "pipeline" / "configs" / "recipes").glob("*.yaml"))

    # the installed copy, run from outside the checkout, with its own configs and compiled kernels
    env = {**os.environ, "PYTHONPATH": str(target), "RPV2_CACHE": str(tmp_path / "cache")}
    probe = subprocess.run(
        [sys.executable, "-c", "import pipeline.config as c, dedup.minhash as m, signals._signals_kernel; "
         "print(c.__file__, c.CONFIG_DIR, m.native_kernel_available())"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120,
    )
    module, config_dir, native = probe.stdout.split()
    assert module.startswith(str(target)) and config_dir == str(target / "pipeline" / "configs")
    assert native == "True"
    installed = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--output", str(tmp_path / "wheel_out")],
                               cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]

    checkout_env = {**os.environ, "RPV2_CACHE": str(tmp_path / "cache")}
    checkout = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--output", str(tmp_path / "checkout_out")],
                              cwd=REPO_ROOT, env=checkout_env, capture_output=True, text=True, timeout=900)
    assert checkout.returncode == 0, checkout.stderr[-3000:]
    digests = _parquet_digests(tmp_path / "wheel_out")
    assert digests and digests == _parquet_digests(tmp_path / "checkout_out")


def test_beam_is_pinned_once_and_the_worker_image_follows_the_pin():
    import apache_beam

    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    pins = re.findall(r'"apache-beam([^"\[]*)"', pyproject)
    assert pins == [f"=={apache_beam.__version__}"], pins  # one pin, and it is what is installed
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BEAM_VERSION=(\S+)$", dockerfile, re.M).group(1) == apache_beam.__version__
    assert "FROM apache/beam_python3.11_sdk:${BEAM_VERSION}" in dockerfile
    # the image build itself refuses another Beam and a missing C kernel
    assert "apache_beam.__version__ == '${BEAM_VERSION}'" in dockerfile
    assert "native_kernel_available()" in dockerfile
