"""``--data`` on a folder of images reads that folder only; class sub-folders are read
only with --labels-from-folders (their names are the true labels)."""

from __future__ import annotations

import json
from pathlib import Path

import devicehelpers
import numpy as np
import pytest

from edgecl.cli import EXIT_OK, EXIT_USAGE, main
from edgecl.cli._common import load_samples

Image = pytest.importorskip("PIL.Image")


def _save(folder: Path, images: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:03d}.png")


@pytest.fixture
def world(tmp_path):
    h = devicehelpers
    x, y = h.synthetic_stream(3, 20, seed=7)
    bundle = h.make_bundle(tmp_path / "m.ecl", x, y, ["a", "b", "c"])
    imgs = tmp_path / "imgs"
    _save(imgs / "mydigits", x[:5])
    _save(imgs / "other", np.zeros((2, 16, 16), np.uint8))  # another size: must not be read
    labelled = tmp_path / "labelled"
    for k, name in enumerate(["a", "b", "c"]):
        _save(labelled / name, x[y == k][:4])
    return tmp_path, bundle, x


def test_a_flat_folder_is_that_folder(world):
    d, _, x = world
    got, labels = load_samples(d / "imgs" / "mydigits")
    assert labels is None and np.array_equal(got, x[:5])


def test_predict_on_a_flat_folder_and_on_class_folders(world, capsys):
    d, bundle, _ = world
    code = main(["predict", str(bundle), "--data", str(d / "imgs" / "mydigits"), "--json"])
    out = capsys.readouterr().out
    assert code == EXIT_OK and json.loads(out)["n_samples"] == 5
    # a folder of class folders holds no images itself: refused, naming its sub-folders
    code = main(["predict", str(bundle), "--data", str(d / "labelled"), "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "sub-folders" in err
    code = main(["predict", str(bundle), "--data", str(d / "labelled"), "--labels-from-folders"])
    out = capsys.readouterr().out
    assert code == EXIT_OK and "accuracy:" in out and "on 12 samples" in out


def test_predict_shows_the_heads_probability(world, capsys):
    d, bundle, x = world
    np.save(d / "x.npy", x)
    assert main(["predict", str(bundle), "--data", str(d / "x.npy"), "--json"]) == EXIT_OK
    res = json.loads(capsys.readouterr().out)
    from edgecl.device import Runtime

    rt = Runtime.load(bundle)
    logits = rt.logits(x).astype(np.float64)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    cols = [list(rt.classes_).index(c) for c in res["predictions"]]
    assert res["predictions"] == rt.predict(x).tolist()
    np.testing.assert_allclose(res["confidence"], p[np.arange(len(x)), cols], rtol=1e-6)
    proba = rt.predict_proba(x)[np.arange(len(x)), cols]
    np.testing.assert_allclose(res["combined_probability"], proba, rtol=1e-6)
