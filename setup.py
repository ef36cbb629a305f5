"""Build hook for the one compiled part of rpv2: the MinHash kernel (dedup/_minhash_kernel.c).

All project metadata lives in pyproject.toml; this file only declares the C extension, so that
``pip install -e .`` (``make install``, the Dockerfile) compiles it. ``optional=True``: without a C
compiler the install still succeeds and dedup.minhash uses its numpy path, which gives the same
values (tests/test_minhash_kernel.py asserts the kernel is built where the tests run).
"""

from pathlib import Path

from setuptools import Extension, setup

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

setup(ext_modules=ext_modules)
