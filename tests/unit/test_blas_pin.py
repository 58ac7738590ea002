"""Importing the package pins OpenBLAS (kernels, threads) so models have the same bytes anywhere."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

from pipeline import pin_blas


def test_pin_sets_one_thread_and_a_kernel_set_the_baseline_cpu_runs() -> None:
    environ: dict[str, str] = {}
    pin_blas(environ)
    assert environ["OPENBLAS_NUM_THREADS"] == "1"
    if platform.machine().lower() in ("x86_64", "amd64"):
        assert environ["OPENBLAS_CORETYPE"] == "NEHALEM"
        assert "X86_V4" in environ["NPY_DISABLE_CPU_FEATURES"]


def test_a_value_the_user_set_is_kept() -> None:
    environ = {"OPENBLAS_NUM_THREADS": "8", "OPENBLAS_CORETYPE": "HASWELL"}
    pin_blas(environ)
    assert environ["OPENBLAS_NUM_THREADS"] == "8"
    assert environ["OPENBLAS_CORETYPE"] == "HASWELL"


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64"), reason="kernel names are x86's"
)
def test_numpy_loaded_after_the_package_runs_the_pinned_blas() -> None:
    code = (
        "import json, pipeline, threadpoolctl, numpy\n"
        "info = [i for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas']\n"
        "print(json.dumps([(i['architecture'], i['num_threads']) for i in info]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS_", "NPY_DISABLE"))}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    pools = json.loads(out.stdout)
    assert pools, "numpy's OpenBLAS not found"
    assert all(arch.lower() == "nehalem" and threads == 1 for arch, threads in pools)
