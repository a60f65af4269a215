#!/usr/bin/env bash
# The kernel tests on an emulated aarch64: a Debian arm64 CPython 3.11 with aarch64 wheels
# of NumPy / Numba / llvmlite / pytest / hypothesis / tqdm, run by qemu-aarch64 (user mode).
#
#   benchmarks/aarch64_emulated.sh [ENV_DIR [TEST_PATH ...]]
#
# ENV_DIR (default /opt/aarch64-env) gets, once (each step is skipped when already done):
#   apt/    apt's own lists, cache and dpkg status for arm64 (the host's apt sources, a
#           Debian bookworm host: python3.11 is bookworm's Python); nothing is installed
#           into the host system, no foreign architecture is added to the host's dpkg
#   root/   the sysroot: python3.11 and libstdc++6 with their dependencies, unpacked with
#           dpkg-deb -x; the wheels go to root/usr/local/lib/python3.11/dist-packages
#   bin/python3.11  a launcher: qemu-aarch64 -L root/ root/usr/bin/python3.11, that is
#           also sys.executable, so the tests' subprocesses run emulated too (no binfmt)
#   logs/   pytest's log and JUnit XML of each test path
# Then each TEST_PATH (default: the kernel tests, most relevant first, then tests/program
# and tests/device) runs with `python -m pytest` in the emulated Python, edgecl taken from
# this checkout (PYTHONPATH), and the summary goes to AARCH64_OUT (default
# benchmarks/results/isa/aarch64_emulated.json): versions and `uname -m` inside the
# emulated Python, Numba's target and the popcount strategy edgecl picks, and the
# passed / failed / skipped counts and wall time of each test path. Correctness only:
# emulated timings say nothing about an aarch64 CPU's speed.
#
# Needs: qemu-user (qemu-aarch64), apt-get and dpkg-deb, a host Python with pip
# (HOST_PYTHON, default .venv/bin/python, else python3), the package registries.
# Settings (environment): NUMBA_CACHE_DIR (default ENV_DIR/numba-cache), AARCH64_BUDGET_S
# (start no test path after this many seconds; 0: no limit), AARCH64_MODULE_TIMEOUT_S
# (default 3600), AARCH64_PIP_PACKAGES (the pinned wheels, the x86 venv's versions).
# Not part of pytest's run: it is a script, run by hand.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_DIR=$(mkdir -p "${1:-/opt/aarch64-env}" && cd "${1:-/opt/aarch64-env}" && pwd)
shift || true
ROOT=$ENV_DIR/root
SITE=$ROOT/usr/local/lib/python3.11/dist-packages
PY=$ENV_DIR/bin/python3.11
LOGS=$ENV_DIR/logs
OUT=${AARCH64_OUT:-$REPO/benchmarks/results/isa/aarch64_emulated.json}
BUDGET_S=${AARCH64_BUDGET_S:-0}
MODULE_TIMEOUT_S=${AARCH64_MODULE_TIMEOUT_S:-3600}
PIP_PACKAGES=${AARCH64_PIP_PACKAGES:-numpy==2.4.6 numba==0.68.1 llvmlite==0.50.0 tqdm==4.70.1 pytest==9.2.0 hypothesis==6.170.17}
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$ENV_DIR/numba-cache}

if [ -n "${HOST_PYTHON:-}" ]; then
  host_python=$HOST_PYTHON
elif [ -x "$REPO/.venv/bin/python" ]; then
  host_python=$REPO/.venv/bin/python
else
  host_python=python3
fi

if [ "$#" -gt 0 ]; then
  tests=("$@")
else
  tests=()
  first=(popcount_strategies bits dense conv fused_block conformance scores headstep rng)
  for name in "${first[@]}"; do
    tests+=("tests/kernels/test_$name.py")
  done
  for path in "$REPO"/tests/kernels/test_*.py; do
    rel=tests/kernels/$(basename "$path")
    case " ${tests[*]} " in
      *" $rel "*) ;;
      *) tests+=("$rel") ;;
    esac
  done
  tests+=(tests/program tests/device)
fi

log() { printf '[aarch64] %s\n' "$*" >&2; }

for tool in qemu-aarch64 apt-get dpkg-deb; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install qemu-user)"; exit 1; }
done

# 1. arm64 .debs with apt's state kept in ENV_DIR/apt, unpacked into the sysroot
apt_dir=$ENV_DIR/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$ROOT/.debs"
[ -e "$apt_dir/status" ] || : >"$apt_dir/status"
apt_opts=(
  -o APT::Architecture=arm64
  -o APT::Architectures::=arm64
  -o Dir::State="$apt_dir"
  -o Dir::State::Lists="$apt_dir/lists"
  -o Dir::State::status="$apt_dir/status"
  -o Dir::Cache="$apt_dir/cache"
)
if ! compgen -G "$apt_dir/lists/*_Packages*" >/dev/null; then
  log "apt-get update (arm64 lists)"
  apt-get "${apt_opts[@]}" update -q >&2
fi
if [ ! -x "$ROOT/usr/bin/python3.11" ] || [ ! -e "$ROOT/.debs/complete" ]; then
  log "downloading python3.11 + libstdc++6 (arm64) and their dependencies"
  apt-get "${apt_opts[@]}" install -d -y -q --no-install-recommends python3.11 libstdc++6 >&2
  for deb in "$apt_dir"/cache/archives/*.deb; do
    stamp=$ROOT/.debs/$(basename "$deb")
    [ -e "$stamp" ] && continue
    dpkg-deb -x "$deb" "$ROOT"
    : >"$stamp"
  done
  : >"$ROOT/.debs/complete"
fi
# Debian's other site folders exist in the sysroot, empty: qemu -L would otherwise fall
# back to the host's (x86) ones
mkdir -p "$SITE" "$ROOT/usr/lib/python3/dist-packages"

# 2. the aarch64 wheels, resolved by the host's pip for the emulated interpreter
if [ "$(cat "$SITE/.edgecl-wheels" 2>/dev/null)" != "$PIP_PACKAGES" ]; then
  log "pip: aarch64 wheels of $PIP_PACKAGES"
  find "$SITE" -mindepth 1 -delete
  # shellcheck disable=SC2086  # PIP_PACKAGES is a list of requirements
  "$host_python" -m pip install -q --no-compile --target "$SITE" \
    --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 \
    --platform manylinux2014_aarch64 --platform any --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    $PIP_PACKAGES >&2
  printf '%s' "$PIP_PACKAGES" >"$SITE/.edgecl-wheels"
fi

# 3. the launcher (sys.executable of the emulated Python)
mkdir -p "$ENV_DIR/bin"
cat >"$PY" <<EOF
#!/bin/sh
# aarch64 CPython 3.11 under qemu-aarch64 (written by benchmarks/aarch64_emulated.sh)
export PYTHONNOUSERSITE=1
exec qemu-aarch64 -L "$ROOT" -0 "\$0" "$ROOT/usr/bin/python3.11" "\$@"
EOF
chmod +x "$PY"

# 4. what the emulated Python sees, then the tests
mkdir -p "$LOGS" "$NUMBA_CACHE_DIR" "$(dirname "$OUT")"
cd "$REPO"
export PYTHONPATH=$REPO
cache_files=$(find "$NUMBA_CACHE_DIR" -type f | wc -l)
log "emulated Python: versions, Numba's target, the popcount strategy"
"$PY" - >"$LOGS/info.json" <<'EOF'
import json
import os
import platform
import sys

import llvmlite
import numba
import numpy

from edgecl.kernels.popcount import DEFAULT_STRATEGY, numba_target

t = numba_target()
print(json.dumps({
    "python": platform.python_version(),
    "python_implementation": platform.python_implementation(),
    "sys_executable": sys.executable,
    "uname_m": os.uname().machine,
    "platform_machine": platform.machine(),
    "numpy": numpy.__version__,
    "numba": numba.__version__,
    "llvmlite": llvmlite.__version__,
    "numba_threads": numba.config.NUMBA_NUM_THREADS,
    "numba_target": {"cpu_name": t.cpu_name, "arch": t.arch, "features": sorted(t.features),
                     "overridden": t.overridden},
    "popcount_strategy": DEFAULT_STRATEGY.name,
}))
EOF
cat "$LOGS/info.json" >&2

: >"$LOGS/runs.tsv"
started=$(date +%s)
for test in "${tests[@]}"; do
  name=$(printf '%s' "$test" | tr '/.' '__')
  if [ "$BUDGET_S" -gt 0 ] && [ $(($(date +%s) - started)) -ge "$BUDGET_S" ]; then
    log "budget spent: $test not run"
    printf '%s\tnot run (budget)\t0\t\n' "$test" >>"$LOGS/runs.tsv"
    continue
  fi
  log "pytest $test"
  t0=$(date +%s)
  rc=0
  timeout "$MODULE_TIMEOUT_S" "$PY" -m pytest -q -p no:cacheprovider -rfEs \
    --junitxml="$LOGS/$name.xml" "$test" >"$LOGS/$name.log" 2>&1 || rc=$?
  printf '%s\t%s\t%s\t%s\n' "$test" "$rc" $(($(date +%s) - t0)) "$name" >>"$LOGS/runs.tsv"
  tail -n 1 "$LOGS/$name.log" >&2
done
total_s=$(($(date +%s) - started))

# 5. the summary (host Python: the JUnit XML of each test path)
python3 - "$LOGS" "$OUT" "$total_s" "$cache_files" "$NUMBA_CACHE_DIR" <<'EOF'
import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

logs, out, total_s, cache_files, cache_dir = sys.argv[1:]
logs = Path(logs)
info = json.loads((logs / "info.json").read_text())
modules = []
for line in (logs / "runs.tsv").read_text().splitlines():
    test, rc, wall, name = line.split("\t")
    row = {"path": test, "exit_code": rc, "wall_s": int(wall)}
    xml = logs / f"{name}.xml"
    if name and xml.exists():
        counts = dict(passed=0, failed=0, errors=0, skipped=0)
        failed, skipped = [], []
        for case in ET.parse(xml).iter("testcase"):
            cid = f"{case.get('classname')}::{case.get('name')}"
            kinds = {child.tag: child for child in case}
            if "failure" in kinds or "error" in kinds:
                tag = "failure" if "failure" in kinds else "error"
                counts["failed" if tag == "failure" else "errors"] += 1
                failed.append({"test": cid, "message": (kinds[tag].get("message") or "")[:300]})
            elif "skipped" in kinds:
                counts["skipped"] += 1
                skipped.append({"test": cid, "reason": (kinds["skipped"].get("message") or "")[:200]})
            else:
                counts["passed"] += 1
        row.update(counts, failures=failed, skips=skipped)
    modules.append(row)
totals = {k: sum(m.get(k, 0) for m in modules) for k in ("passed", "failed", "errors", "skipped")}
summary = {
    "what": "edgecl's tests under qemu-aarch64 user emulation (benchmarks/aarch64_emulated.sh);"
    " correctness only, no speed figures",
    "emulated_python": info,
    "numba_cache": {"dir": cache_dir, "files_at_start": int(cache_files)},
    "totals": totals,
    "wall_s": int(total_s),
    "modules": modules,
}
Path(out).write_text(json.dumps(summary, indent=1) + "\n")
print(json.dumps({"totals": totals, "wall_s": int(total_s), "out": out}))
EOF
