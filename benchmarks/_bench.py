"""What every benchmark does first: pin the process to one CPU (before numpy is imported,
so its BLAS starts with one thread too) and describe the machine for the report."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def _pin_to_one_cpu() -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


PINNED_CPU = _pin_to_one_cpu()


def cpu_description() -> str:
    """CPU model, logical CPU count, the pinned CPU and the Python version."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}; {os.cpu_count()} logical CPUs, pinned to CPU {PINNED_CPU}; "
        f"Python {platform.python_version()}"
    )
