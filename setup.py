"""Build hook: the packages (with configs/ inside them) and the two C kernels (dedup/_minhash_kernel.c,
signals/_signals_kernel.c).

Project metadata lives in pyproject.toml; this file declares the package layout and the C extensions, so that
``pip install -e .`` (``make install``, the Dockerfile) compiles it. ``optional=True``: without a C
compiler the install still succeeds and dedup.minhash uses its numpy path, which gives the same
values (tests/test_minhash_kernel.py asserts the kernel is built where the tests run).
"""

from pathlib import Path

from setuptools import Extension, find_packages, setup

KERNEL_SOURCE = "dedup/_minhash_kernel.c"

# The Dockerfile installs the dependencies before it copies the sources; build the kernel only when its
# source is there (the second, full install builds it).
ext_modules = (
    [Extension("dedup._minhash_kernel", [KERNEL_SOURCE], extra_compile_args=["-O3"], optional=True)]
    if (Path(__file__).resolve().parent / KERNEL_SOURCE).exists()
    else []
)
# the repetition signals' kernel (signals/_signals_kernel.c); signals.repetition falls back to Python
SIGNALS_KERNEL_SOURCE = "signals/_signals_kernel.c"
if (Path(__file__).resolve().parent / SIGNALS_KERNEL_SOURCE).exists():
    ext_modules.append(
        Extension("signals._signals_kernel", [SIGNALS_KERNEL_SOURCE], extra_compile_args=["-O3"], optional=True)
    )

# The packages, and the top-level configs/ shipped inside the package as pipeline/configs, so that a plain
# (non-editable) install carries the defaults, runner profiles and recipes (pipeline.config finds either).
setup(
    packages=[*find_packages(include=["pipeline*", "signals*", "dedup*"]),
              "pipeline.configs", "pipeline.configs.runners", "pipeline.configs.recipes"],
    package_dir={"pipeline.configs": "configs"},
    package_data={
        "pipeline.configs": ["*.yaml", "runners/*.yaml", "recipes/*.yaml"],
        "pipeline.sample": ["data/**/*"],
    },
    ext_modules=ext_modules,
)
