"""``edgecl export-c``: writes the project, refuses a folder in use, ``--json``."""

import json

from edgecl.cli import main
from edgecl.data import sample_dir

BUNDLE = str(sample_dir() / "compile.ecl")


def test_export_c_command(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["export-c", BUNDLE, "-o", str(out), "-q"]) == 0
    assert (out / "edgecl_model.c").is_file() and (out / "board" / "mps2_an386.ld").is_file()
    assert "make -C" in capsys.readouterr().out
    assert main(["export-c", BUNDLE, "-o", str(out), "-q"]) == 1  # not empty: refused
    assert "FileExistsError" in capsys.readouterr().err
    assert main(["export-c", BUNDLE, "-o", str(out), "--overwrite", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["command"] == "export-c" and report["n_bits"] == 512
    assert report["ctx_bytes"] > report["budget_bytes"] == 32768
