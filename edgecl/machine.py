"""The machine something ran on: CPU model and flags, cores, Numba's target, library
versions, load and date (for ``--json`` reports and the benchmarks' RESULTS.md).

Versions come from package metadata, so nothing heavy is imported and torch never is;
:func:`numba_target` imports ``numba.core.config`` and ``llvmlite`` only when asked.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
from typing import Any

__all__ = ["avx2_only_env", "cpu_model", "machine_info", "machine_markdown", "numba_target"]

# CPU flags that decide how the bit kernels compile.
_FLAG_PATTERN = re.compile(r"^(avx2|popcnt|bmi2|fma|avx512.*|avx_vnni)$")
_PACKAGES = ("edgecl", "numpy", "numba", "llvmlite", "torch", "onnx", "onnxruntime")


def _cpuinfo() -> dict[str, str]:
    """The fields of the first processor in ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if not key.strip():
                    break  # the first processor is enough
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else what :mod:`platform` says)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def numba_target() -> str | None:
    """The CPU Numba compiles for, and whether AVX-512 VPOPCNTDQ is among its features."""
    try:
        import llvmlite.binding as ll
        from numba.core import config
    except ImportError:
        return None
    name = config.CPU_NAME or ll.get_host_cpu_name()
    features = config.CPU_FEATURES or ll.get_host_cpu_features().flatten()
    avx512 = "+avx512vpopcntdq" in features.split(",")
    override = " (NUMBA_CPU_NAME/NUMBA_CPU_FEATURES set)" if config.CPU_NAME else ""
    return f"{name}, {'AVX-512 VPOPCNTDQ' if avx512 else 'no AVX-512'}{override}"


def avx2_only_env() -> dict[str, str]:
    """``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` for this CPU with every AVX-512, AVX10
    and AMX feature turned off: what an AVX2-only core of the same kind compiles (set them
    before Numba is imported, in a child process)."""
    import llvmlite.binding as ll

    off = ("avx512", "avx10", "amx", "evex512")
    feats = ll.get_host_cpu_features()
    spec = ",".join(
        ("-" if k.startswith(off) else ("+" if v else "-")) + k for k, v in feats.items()
    )
    return {"NUMBA_CPU_NAME": ll.get_host_cpu_name(), "NUMBA_CPU_FEATURES": spec}


def machine_info() -> dict[str, Any]:
    """CPU model (``cpu``, and ``cpu_model`` with family and model numbers), a subset of
    the CPU flags, cores (all and usable), Numba's target, versions, platform, load, date."""
    fields = _cpuinfo()
    model = cpu_model()
    detailed = model
    if "cpu family" in fields:
        detailed += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    flags = sorted(f for f in fields.get("flags", "").split() if _FLAG_PATTERN.match(f))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in _PACKAGES})
    return {
        "cpu": model,
        "cpu_model": detailed,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "numba_target": numba_target(),
        "python": platform.python_version(),
        "versions": versions,
        "platform": platform.platform(),
        "load_average_1_5_15": load,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_markdown(info: dict[str, Any] | None = None) -> str:
    """:func:`machine_info` as a small markdown list."""
    info = machine_info() if info is None else info
    listed = {k: v for k, v in info["versions"].items() if k != "python"}
    versions = ", ".join(f"{k} {v}" for k, v in listed.items() if v is not None)
    missing = [k for k, v in listed.items() if v is None]
    lines = [
        f"- CPU: {info['cpu_model']}, {info['cores']} cores ({info['usable_cores']} usable)",
        f"- CPU flags (subset): {' '.join(info['cpu_flags']) or 'none found'}",
        f"- Numba target: {info['numba_target']}",
        f"- Python {info['python']}; {versions}"
        + (f"; not installed: {', '.join(missing)}" if missing else ""),
        f"- Platform: {info['platform']}",
        f"- Load average (1, 5, 15 min) at the start: {info['load_average_1_5_15']}",
        f"- Date: {info['date']}",
    ]
    return "\n".join(lines)
