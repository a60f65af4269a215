"""``edgecl import-larq`` on the command line: import a Larq model, learn a new class on
the device, predict; refusals exit 5 (export) or 2 (usage) and write nothing."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from edgecl.cli import main  # noqa: E402
from edgecl.device import Runtime  # noqa: E402
from edgecl.kernels import unpack_bits  # noqa: E402

FIXTURES = Path(__file__).parents[1] / "fixtures" / "larq"


def _data(tmp_path):
    d = np.load(FIXTURES / "dense_embedding.npz")
    x = d["x"]
    y = np.array(["a", "b", "c"])[np.arange(len(x)) % 3]  # labels name the classes
    np.savez(tmp_path / "base.npz", x=x, y=y)
    return x, d["bits"]


def test_import_learn_predict(tmp_path, capsys):
    x, bits = _data(tmp_path)
    out = tmp_path / "base.ecl"
    rc = main(
        [
            "import-larq",
            str(FIXTURES / "dense_embedding.h5"),
            "-o",
            str(out),
            "--data",
            str(tmp_path / "base.npz"),
            "--class-names",
            "a,b,c",
            "--components",
            "2",
            "--json",
            "-q",
        ]
    )
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["command"] == "import-larq" and report["bundle"]["classes"] == ["a", "b", "c"]
    rt = Runtime.load(out)
    np.testing.assert_array_equal(unpack_bits(rt.embed(x), rt.n_bits), bits)
    # a new class: bright images, unlike the base samples
    rng = np.random.default_rng(0)
    new = np.clip(rng.normal(230, 10, (12, 16, 16)), 0, 255).astype(np.uint8)
    np.save(tmp_path / "new.npy", new)
    assert (
        main(
            [
                "learn",
                str(out),
                "--class",
                "bright",
                "--data",
                str(tmp_path / "new.npy"),
                "--in-place",
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["predict", str(out), "--data", str(tmp_path / "new.npy"), "--json", "-q"]) == 0
    pred = json.loads(capsys.readouterr().out)
    assert Runtime.load(out).classes_.tolist() == ["a", "b", "c", "bright"]
    assert pred["command"] == "predict"


def _broken_model(tmp_path):
    bad = tmp_path / "bad.h5"
    shutil.copy(FIXTURES / "dense_embedding.h5", bad)
    with h5py.File(bad, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        for layer in cfg["config"]["layers"]:
            if layer["class_name"] == "Flatten":
                layer["class_name"] = "GlobalAveragePooling2D"
        f.attrs["model_config"] = json.dumps(cfg)
    return bad


def test_unsupported_layer_exits_5(tmp_path, capsys):
    _data(tmp_path)
    out = tmp_path / "x.ecl"
    rc = main(
        [
            "import-larq",
            str(_broken_model(tmp_path)),
            "-o",
            str(out),
            "--data",
            str(tmp_path / "base.npz"),
            "-q",
        ]
    )
    assert rc == 5
    err = capsys.readouterr().err
    assert "'f' (GlobalAveragePooling2D)" in err and "unsupported layer type" in err
    assert not out.exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    _data(tmp_path)
    out = tmp_path / "x.ecl"
    model = str(FIXTURES / "dense_embedding.h5")
    assert main(["import-larq", model, "-o", str(out), "--data", str(tmp_path / "none")]) == 2
    np.save(tmp_path / "x.npy", np.zeros((2, 16, 16), np.uint8))
    assert main(["import-larq", model, "-o", str(out), "--data", str(tmp_path / "x.npy")]) == 2
    assert (
        main(
            [
                "import-larq",
                model,
                "-o",
                str(out),
                "--data",
                str(tmp_path / "base.npz"),
                "--class-names",
                "a,b",
            ]
        )
        == 2
    )
    assert not out.exists()


def test_image_folder_data(tmp_path, capsys):
    from PIL import Image

    d = np.load(FIXTURES / "dense_embedding.npz")
    for i, img in enumerate(d["x"][:12]):
        folder = tmp_path / "images" / "abc"[i % 3]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img[..., 0]).save(folder / f"{i}.png")
    out = tmp_path / "b.ecl"
    rc = main(
        [
            "import-larq",
            str(FIXTURES / "dense_embedding.keras"),
            "-o",
            str(out),
            "--data",
            str(tmp_path / "images"),
            "--class-names",
            "c,b,a",
            "--memory",
            "latent",
            "--per-class",
            "2",
            "-q",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    rt = Runtime.load(out)
    assert rt.classes_.tolist() == ["c", "b", "a"]
    np.testing.assert_array_equal(unpack_bits(rt.embed(d["x"][:12]), rt.n_bits), d["bits"][:12])
