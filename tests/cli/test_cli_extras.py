"""A device-only install: the host commands (demo, train, export) say which extra to
install, exit 2, and do nothing first (no folder made, no data read). Torch is blocked by
an import hook in a fresh interpreter (tests/cli/test_cli_device.py runs the device
commands so)."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUNNER = """
import sys
from edgecl.testing import block_torch
block_torch()
from edgecl.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _edgecl(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "-o", "{d}/demo"],
        ["demo", "--quick", "-o", "{d}/demo", "--json", "{d}/r.json"],
        ["train", "-o", "{d}/base.pt"],
        ["export", "{d}/base.pt", "-o", "{d}/m.ecl"],
    ],
)
def test_host_commands_name_the_extra_before_any_work(tmp_path, argv):
    before = set(tmp_path.iterdir())
    r = _edgecl(*[a.format(d=tmp_path) for a in argv], cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "pip install 'edgecl[train]'" in r.stderr and "torch" in r.stderr
    assert "Traceback" not in r.stderr and "ModuleNotFoundError" not in r.stderr
    assert set(tmp_path.iterdir()) == before  # no empty folder, nothing written
    assert "data:" not in r.stdout  # no data loaded
