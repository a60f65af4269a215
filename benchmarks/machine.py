"""The machine a benchmark ran on: CPU, flags, cores, library versions, date.

Import it from another benchmark script (``from machine import machine_info``, the
scripts' folder is on ``sys.path`` when run as ``python benchmarks/<name>.py``; or
``from benchmarks.machine import ...`` from the repository root). Nothing heavy is imported:
versions come from package metadata, so torch is never loaded here.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re

# CPU flags that decide how the bit kernels compile.
_FLAG_PATTERN = re.compile(r"^(avx2|popcnt|bmi2|fma|avx512.*|avx_vnni)$")
_PACKAGES = ("numpy", "numba", "llvmlite", "torch", "onnx", "onnxruntime")


def _cpuinfo() -> tuple[str, list[str]]:
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
    model = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        model += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    flags = fields.get("flags", "").split()
    return model, sorted(f for f in flags if _FLAG_PATTERN.match(f))


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _numba_target() -> str | None:
    """The CPU Numba compiles for, and whether AVX-512 is among its features."""
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


def machine_info() -> dict:
    """CPU model, a subset of CPU flags, cores, Numba's target, versions, load and date."""
    model, flags = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu_model": model,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "numba_target": _numba_target(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "platform": platform.platform(),
        "load_average_1_5_15": load,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def machine_markdown(info: dict | None = None) -> str:
    """The same as a small markdown block."""
    info = machine_info() if info is None else info
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v is not None)
    missing = [k for k, v in info["versions"].items() if v is None]
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


if __name__ == "__main__":
    print(machine_markdown())
