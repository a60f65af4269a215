"""The README's ``edgecl`` commands run (small): ``edgecl demo`` as ``--quick``, the other
commands as written, in a temporary folder, with every ``--data X.npy`` they name made from
the shipped MNIST sample."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    out = []
    for block in re.findall(r"```(?:bash|sh|console)\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("$ "):
                line = line[2:]
            if line.startswith("edgecl ") and "--help" not in line:
                out.append(line)
    return out


def test_readme_commands_run(tmp_path):
    pytest.importorskip("torch")
    commands = readme_commands()
    if not any(c.startswith("edgecl demo") for c in commands):
        pytest.skip("README.md shows no `edgecl demo` command yet")
    from edgecl.data import load_mnist_sample

    x = load_mnist_sample()[2]
    for cmd in commands:
        args = shlex.split(cmd)[1:]
        if args[0] == "demo":
            args += ["--quick"]
        for i, a in enumerate(args[:-1]):
            if a == "--data" and args[i + 1].endswith(".npy"):
                target = tmp_path / args[i + 1]
                target.parent.mkdir(parents=True, exist_ok=True)
                np.save(target, x[:20])
        r = subprocess.run(
            [sys.executable, "-m", "edgecl.cli", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert r.returncode == 0, f"{cmd}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
