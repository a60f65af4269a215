"""One flag vocabulary: help on every visible option, ``--threads`` where kernels run,
``-o/--output`` and ``--data`` everywhere, old spellings hidden, one size rule; and the
package around the command (``python -m edgecl``, py.typed, LICENSE, pyproject)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from edgecl.cli import build_parser, commands, parse_bytes
from edgecl.cli._common import SIZE_HELP

ROOT = Path(__file__).resolve().parents[2]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_visible_option_has_help_text():
    missing = []
    for name, sub in _subparsers().items():
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip():
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.parametrize("command", ["export", "learn", "predict", "bench", "demo", "train"])
def test_threads_on_every_command_that_runs_kernels(command):
    sub = _subparsers()[command]
    assert any("--threads" in a.option_strings for a in sub._actions)
    assert "--threads" in sub.format_help()


@pytest.mark.parametrize(
    "command,old,new,dest",
    [
        ("demo", "--out", "--output", "output"),
        ("demo", "--data-dir", "--data", "data_dir"),
        ("train", "--data-dir", "--data", "data_dir"),
        ("export", "--calibration-data", "--data", "calibration_data"),
    ],
)
def test_old_spellings_are_hidden_aliases(command, old, new, dest):
    sub = _subparsers()[command]
    text = sub.format_help()
    assert new in text and old not in text.replace(new, "")
    base = {"export": ["ck.pt", "-o", "m.ecl"], "train": ["-o", "b.pt"]}.get(command, [])
    old_args = sub.parse_args([*base, old, "somewhere"])
    new_args = sub.parse_args([*base, new, "somewhere"])
    assert getattr(old_args, dest) == getattr(new_args, dest) == Path("somewhere")


def test_one_output_flag_for_files_written():
    for name in ("export", "train", "learn", "demo"):
        sub = _subparsers()[name]
        flags = {s for a in sub._actions for s in a.option_strings}
        assert {"-o", "--output"} <= flags, name


def test_sizes_one_rule():
    assert parse_bytes("5000") == 5000
    assert parse_bytes("64KiB") == 65536 and parse_bytes("8kB") == 8000
    assert parse_bytes("2MiB") == 2 * 1024**2 and parse_bytes("2MB") == 2_000_000
    assert parse_bytes("1GiB") == 1024**3 and parse_bytes("1.5KiB") == 1536
    for ambiguous in ("8k", "8K", "8M", "1g"):
        with pytest.raises(argparse.ArgumentTypeError, match="ambiguous") as info:
            parse_bytes(ambiguous)
        assert "iB" in str(info.value) and "B (" in str(info.value)
    for bad in ("0.5", "1.0001kB", "0", "-3", "12 parsecs", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_bytes(bad)


def test_every_size_flag_states_the_rule():
    for name, sub in _subparsers().items():
        for action in sub._actions:
            if action.type is parse_bytes:
                assert SIZE_HELP in action.help, f"{name} {action.option_strings}"


def test_base_tasks_and_classes_agree_with_the_recipe():
    pytest.importorskip("torch")
    from edgecl.cli._common import BASE_TASK_CHOICES
    from edgecl.demo import BASE_CLASSES
    from edgecl.train.recipes import BASE_CLASSES as RECIPE_CLASSES
    from edgecl.train.recipes import BASE_TASKS

    assert BASE_TASK_CHOICES == BASE_TASKS and BASE_CLASSES == RECIPE_CLASSES


def test_python_dash_m_edgecl():
    r = subprocess.run(
        [sys.executable, "-m", "edgecl", "--version"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0 and r.stdout.startswith("edgecl "), r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "edgecl", "predict", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "--labels-from-folders" in r.stdout


def test_commands_table_lists_compile():
    names = [c.name for c in commands()]
    assert "compile" in names and len(set(names)) == len(names)


def test_numba_cache_dir_default_only_when_unset(tmp_path):
    code = (
        "import os, sys\n"
        "import edgecl, edgecl.cli\n"
        "assert 'NUMBA_CACHE_DIR' not in os.environ  # no import-time side effect\n"
        "from edgecl.cli._common import set_numba_cache_dir\n"
        "set_numba_cache_dir()\n"
        "print(os.environ['NUMBA_CACHE_DIR'])\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k != "NUMBA_CACHE_DIR"}
    env.pop("XDG_CACHE_HOME", None)
    env["HOME"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / ".cache" / "edgecl" / "numba")
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "mine")
    r = subprocess.run(
        [sys.executable, "-c", code.replace("assert", "#")], capture_output=True, text=True, env=env
    )
    assert r.stdout.strip() == str(tmp_path / "mine")


def test_package_files():
    assert (ROOT / "edgecl" / "py.typed").is_file()
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    meta = project["project"]
    assert "Typing :: Typed" in meta["classifiers"] and meta["keywords"]
    extras = meta["optional-dependencies"]
    assert "torch>=2.4,<3" in extras["train"]  # a range, not a pin
    assert "torch>=2.4,<2.14" in extras["dev"]  # what the suite is run on
    assert extras["larq"] == ["h5py>=3"]
    data = project["tool"]["setuptools"]["package-data"]["edgecl"]
    assert "py.typed" in data and any(p.endswith("*.ecl") for p in data)
    assert meta["scripts"]["edgecl"] == "edgecl.cli:main"
