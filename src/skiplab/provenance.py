"""What a result was computed with: library versions, the git revision, and the machine.

Every stored run and every shipped results file carries these, because a
float32 training run is bit-exact only on the same kernels: PyTorch picks its
vectorised CPU kernels by the processor's capability (`AVX2`, `AVX512`, ...)
and splits reductions by the number of threads, so two machines that differ in
either add the same numbers in another order. `machine()` records both; the
README's reproducibility section says what a rerun elsewhere can expect.
"""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import numpy
import torch

import skiplab


def versions() -> dict:
    """skiplab, torch, numpy and Python versions."""
    return {
        "skiplab": skiplab.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def cpu_model() -> str:
    """The processor's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The CPU, the kernels PyTorch uses on it, and torch's intra-op thread count now."""
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
    }


def same_kernels(a: dict, b: dict) -> bool:
    """Whether two `machine()` records promise bit-exact float32 reruns.

    Same architecture, capability and thread count, and the same CPU model:
    MKL and oneDNN choose their kernels by processor generation too, beyond
    the capability PyTorch reports.
    """
    return all(a.get(k) is not None and a.get(k) == b.get(k) for k in ("arch", "capability", "threads", "cpu"))


FLOAT32_UNIT_ROUNDOFF = 2.0**-24  # u: the largest relative error of one rounded float32 operation


def rounding_bound(layers: int, reduction: int) -> float:
    """Relative difference two correct float32 kernels may show after `layers` layers of sums of `reduction` terms.

    A sum of n products computed in any order is within γ_n = n·u / (1 − n·u)
    of the exact one, relative to the sum of magnitudes (Higham, "Accuracy and
    Stability of Numerical Algorithms", sec. 3.1); two orders are within twice
    that of each other, and the error of each layer adds up through the stack.
    A worst case: kernels that merely reorder sums land far inside it.
    """
    n_u = reduction * FLOAT32_UNIT_ROUNDOFF
    return 2 * layers * n_u / (1 - n_u)


# Environment variables that make PyTorch, oneDNN and MKL use an older instruction set than this CPU has, so a
# rerun with other kernels can be made on one machine: the kernels another processor would pick.
_OLDER_KERNELS = {
    "AVX512": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
    "AVX2": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"},
}


def older_kernels_env(capability: str | None = None) -> dict[str, str]:
    """Environment for a process that computes with the kernels of an older CPU than `capability` (default: this one).

    Empty when there is nothing older to fall back to (a CPU already on the
    default kernels).
    """
    return dict(_OLDER_KERNELS.get(capability or torch.backends.cpu.get_cpu_capability(), {}))


def git_revision() -> str | None:
    """The commit of the source tree skiplab runs from, if it is a git checkout (else None)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(skiplab.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
