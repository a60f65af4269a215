"""The user's own data through train -> export -> learn -> predict, on the CLI and in
Python: generated data sets of 8x8x1, 16x16x1, 32x32x3, 64x64x3 and 12x20x1 images, as an
IDX folder, an .npz, a CIFAR-10 batches folder and image folders; class names from the
data; networks that cannot work refused before any work (exit 2). Tiny networks, 1 epoch."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

from edgecl.cli import EXIT_OK, EXIT_USAGE, main  # noqa: E402

TINY = ["--epochs", "1", "--n-bits", "16", "--channels", "4,8", "-q"]


def _makedata():
    path = Path(__file__).parents[1] / "data" / "makedata.py"
    spec = importlib.util.spec_from_file_location("_edgecl_makedata_cli", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


md = _makedata()


def _write(form: str, root: Path, shape: tuple[int, ...], names: list[str]) -> Path:
    """A data set of ``len(names)`` classes in ``form``; returns the ``--data`` path."""
    x, y = md.images(12, len(names), shape, seed=len(shape) + shape[0])
    xt, yt = md.images(4, len(names), shape, seed=99)
    if form == "idx":
        return md.write_idx(root / "idx", x, y, xt, yt)
    if form == "npz":
        np.savez(root / "d.npz", x=x, y=y, x_test=xt, y_test=yt, class_names=np.array(names))
        return root / "d.npz"
    if form == "cifar":
        return md.write_cifar10(root / "cifar", x, y, xt, yt, names)
    pytest.importorskip("PIL")
    return md.write_folder(root / "images", np.concatenate([x, xt]), np.concatenate([y, yt]), names)


CASES = [  # form, image shape, class names, extra train flags
    ("idx", (8, 8), ["0", "1", "2"], ["--base-task", "plain"]),
    ("npz", (16, 16), ["ant", "bee", "cow"], ["--base-task", "rotation"]),
    ("cifar", (32, 32, 3), ["plane", "car", "ship"], ["--base-task", "plain"]),
    (
        "folder",
        (64, 64, 3),
        ["cat", "dog", "fox"],
        ["--base-task", "plain", "--backbone", "mnist_bnn"],
    ),
    ("npz", (12, 20), ["a", "b", "c"], ["--base-task", "rotflipae", "--no-flips"]),
]


@pytest.mark.parametrize("form,shape,names,extra", CASES, ids=lambda v: str(v))
def test_train_export_learn_predict_on_the_cli(tmp_path, capsys, form, shape, names, extra):
    data = _write(form, tmp_path, shape, names)
    ckpt, bundle, learned = tmp_path / "b.pt", tmp_path / "b.ecl", tmp_path / "l.ecl"
    base = f"{names[0]},{names[1]}"
    argv = ["train", "-o", str(ckpt), "--data", str(data), "--base-classes", base, *TINY, *extra]
    assert main([*argv, "--json"]) == EXIT_OK, capsys.readouterr().err
    trained = json.loads(capsys.readouterr().out)
    h, w = shape[:2]
    c = shape[2] if len(shape) == 3 else 1
    assert trained["class_names"] == names[:2] and trained["input_shape"] == [h, w, c]
    assert trained["flips"] == (c == 3)  # the default per channel count (or --no-flips)
    argv = ["export", str(ckpt), "-o", str(bundle), "--data", str(data)]
    argv += ["--components", "2", "--bits", "2", "--calibration-samples", "24", "--json"]
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    exported = json.loads(capsys.readouterr().out)
    assert exported["calibration"]["samples"] == 24  # 12 of each base class
    from edgecl.device import Runtime

    rt = Runtime.load(bundle)
    assert tuple(rt.input_spec.shape) == (h, w, c)
    assert list(rt.classes_) == names[:2]
    x, y = md.images(6, len(names), shape, seed=5)
    np.save(tmp_path / "new.npy", x[y == 2])
    argv = ["learn", str(bundle), "--class", names[2], "--data", str(tmp_path / "new.npy")]
    assert main([*argv, "-o", str(learned), "-q"]) == EXIT_OK, capsys.readouterr().err
    capsys.readouterr()
    np.save(tmp_path / "all.npy", x)
    assert main(["predict", str(learned), "--data", str(tmp_path / "all.npy"), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)["predictions"]
    assert len(predicted) == len(x) and set(predicted) <= set(names)
    assert list(Runtime.load(learned).classes_) == names


def test_predict_reads_an_rgb_image_folder_as_rgb(tmp_path, capsys):
    pytest.importorskip("PIL")
    data = _write("folder", tmp_path, (16, 16, 3), ["red", "green", "blue"])
    ckpt, bundle = tmp_path / "b.pt", tmp_path / "b.ecl"
    argv = ["train", "-o", str(ckpt), "--data", str(data), *TINY, "--base-task", "plain"]
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    argv = ["export", str(ckpt), "-o", str(bundle), "--data", str(data), "--memory", "none", "-q"]
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    capsys.readouterr()
    argv = ["predict", str(bundle), "--data", str(data), "--labels-from-folders", "--json"]
    assert main(argv) == EXIT_OK, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["n_samples"] == 48


def test_what_cannot_work_is_refused_before_any_work(tmp_path, capsys):
    data = _write("npz", tmp_path, (8, 8), ["a", "b", "c"])
    ckpt = tmp_path / "b.pt"

    def refused(*argv: str) -> str:
        assert main(["train", "-o", str(ckpt), *argv]) == EXIT_USAGE
        assert not ckpt.exists()
        return capsys.readouterr().err

    assert "at most 2 2x2 pools" in refused("--data", str(data), "--pools", "4", *TINY)
    assert "pools <= 2" in refused("--data", str(data), "--pools", "4", *TINY)
    err = refused("--data", str(data), "--backbone", "mlp", "--pools", "1", *TINY)
    assert "8x8x1" in err and "mnist_bnn" in err
    assert "expected class names (a, b, c)" in refused("--data", str(data), "--base-classes", "z")
    (tmp_path / "x.txt").write_text("not data")
    assert "a data set folder or an .npz file" in refused("--data", str(tmp_path / "x.txt"))
    (tmp_path / "empty").mkdir()
    err = refused("--data", str(tmp_path / "empty"))
    assert "DataFormatError" in err and "an .npz with x" in err
    assert "expected --data" in refused("--data", str(tmp_path / "missing"))
    assert "HxW" in refused("--data", str(data), "--image-size", "2x2")
    err = refused("--data", str(data), "--backbone", "resnet")
    assert "invalid choice" in err
    argv = ["demo", "--quick", "--data", str(data), "-o", str(tmp_path / "d")]
    assert main([*argv, "--base-classes", "a,b", "--new-classes", "b,c"]) == EXIT_USAGE
    assert "disjoint" in capsys.readouterr().err and not (tmp_path / "d" / "base.pt").exists()


def test_the_cli_choices_match_the_library():
    from edgecl.cli.train import BACKBONE_CHOICES
    from edgecl.train.backbones import BACKBONE_CHOICES as LIBRARY

    assert BACKBONE_CHOICES == LIBRARY


def test_demo_on_a_generated_rgb_folder(tmp_path, capsys):
    """The demo's protocol on the user's data: base classes on the host, the others one
    learn_class each on the device (torch blocked), by their folder names."""
    pytest.importorskip("PIL")
    data = _write("folder", tmp_path, (12, 20, 3), ["ant", "bee", "cow", "doe"])
    out = tmp_path / "demo"
    argv = ["demo", "--quick", "--data", str(data), "-o", str(out), "--new-classes", "doe,cow"]
    assert main([*argv, "--base-classes", "bee,ant", "-q"]) == EXIT_OK, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["base_classes"] == ["bee", "ant"] and report["new_classes"] == ["doe", "cow"]
    assert report["input_shape"] == [12, 20, 3] and report["data_kind"] == "folder"
    assert [s["class"] for s in report["steps"]] == ["2 base", "doe", "cow"]
    assert report["device"]["torch_imported"] is False
    from edgecl.device import Runtime

    assert list(Runtime.load(out / "model.ecl").classes_) == ["bee", "ant", "doe", "cow"]


@pytest.mark.parametrize("shape", [(4, 4), (12, 20, 3)])
def test_the_same_flow_in_python(tmp_path, shape):
    from edgecl.data import load_dataset
    from edgecl.device import Runtime
    from edgecl.export import ExportConfig, export_bundle
    from edgecl.memory import GBMConfig
    from edgecl.train.recipes import BaseTrainConfig, train_base

    x, y = md.images(12, 3, shape, seed=3)
    np.savez(tmp_path / "d.npz", x=x, y=y, class_names=np.array(["p", "q", "r"]))
    ds = load_dataset(tmp_path / "d.npz")
    cfg = BaseTrainConfig(base_task="rotflipae", epochs=1, n_bits=16, channels=(4, 8))
    model, summary = train_base(
        cfg,
        ds.arrays(),
        tmp_path / "b.pt",
        classes=[0, 1],
        class_names=ds.class_names,
        log=lambda m: None,
        progress=False,
    )
    assert summary["backbone"] == ("mlp" if shape == (4, 4) else "mnist_bnn")
    keep = ds.y_train < 2
    export_bundle(
        model,
        tmp_path / "b.ecl",
        ExportConfig(memory=GBMConfig(components=2, bits=2)),
        calibration=(ds.x_train[keep], ds.y_train[keep]),
        class_names=summary["class_names"],
    )  # verifies the device's embedding bits against torch's
    rt = Runtime.load(tmp_path / "b.ecl")
    rt.learn_class("r", ds.x_train[ds.y_train == 2])
    assert list(rt.classes_) == ["p", "q", "r"]
    assert set(rt.predict(ds.x_test).tolist()) <= {"p", "q", "r"}
    with pytest.raises(ValueError, match="expected"):
        rt.predict(np.zeros((1, 5, 5), np.uint8))  # another shape than the bundle's
