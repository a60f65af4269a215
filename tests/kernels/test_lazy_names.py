"""The lazy names of :mod:`edgecl.kernels` stay the functions, whatever was imported first."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "first",
    ["import edgecl.kernels.threshold", "import edgecl.kernels.block", "pass"],
)
def test_threshold_is_the_function_after_any_import(first):
    code = (
        f"{first}\n"
        "import edgecl.kernels as k\n"
        "from edgecl.kernels import threshold\n"
        "from edgecl.kernels.threshold import threshold as fn\n"
        "assert threshold is fn and k.threshold is fn, threshold\n"
        "import edgecl.kernels.threshold as again\n"
        "assert again is fn\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
