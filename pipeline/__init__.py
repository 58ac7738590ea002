"""loyalty-pipeline: point-in-time churn and repurchase models for retail customers.

Importing the package pins the BLAS that numpy and scipy use to one kernel set and one thread
(:func:`pin_blas`), before numpy is loaded, so that a model trained on another machine has the
same bytes: OpenBLAS picks its kernels by CPU and splits sums by thread count, and either
changes the last digits of the BTYD fits the models are trained on (which split thresholds
follow). See docs/architecture.md, "The same bytes on every machine".
"""

import os
import platform

__version__ = "0.1.0"

#: OpenBLAS kernels every CPU numpy supports can run (numpy's x86-64 baseline is x86-64-v2).
_CORETYPES = {"x86_64": "NEHALEM", "amd64": "NEHALEM", "aarch64": "ARMV8", "arm64": "ARMV8"}
#: numpy's AVX-512 loops compute exp/log with other roundings than its AVX2 and baseline ones.
_NUMPY_FEATURES_OFF = "X86_V4 AVX512_ICL AVX512_SPR"


def pin_blas(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> None:
    """Fix OpenBLAS's kernels and threads (and numpy's widest loops) unless already set.

    Has effect only before numpy is first imported in the process (workers inherit the
    environment). A value already set by the user is kept: setting one is opting out.
    """
    coretype = _CORETYPES.get(platform.machine().lower())
    if coretype:
        environ.setdefault("OPENBLAS_CORETYPE", coretype)
    environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if coretype == "NEHALEM":
        environ.setdefault("NPY_DISABLE_CPU_FEATURES", _NUMPY_FEATURES_OFF)


pin_blas()
