"""The machine a benchmark ran on (:mod:`edgecl.machine`, re-exported for the scripts).

Import it from another benchmark script (``from machine import machine_info``, the
scripts' folder is on ``sys.path`` when run as ``python benchmarks/<name>.py``; or
``from benchmarks.machine import ...`` from the repository root). Nothing heavy is imported:
versions come from package metadata, so torch is never loaded here.
"""

from __future__ import annotations

from edgecl.machine import avx2_only_env, machine_info, machine_markdown

__all__ = ["avx2_only_env", "machine_info", "machine_markdown"]

if __name__ == "__main__":
    print(machine_markdown())
