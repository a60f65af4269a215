"""The base-training recipe of ``edgecl train`` and the demo: one progress bar over the
whole host training, no torch warning, a checkpoint of the base classes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("torch")

from edgecl.train import load_checkpoint  # noqa: E402
from edgecl.train.recipes import BaseTrainConfig, train_base  # noqa: E402


@pytest.fixture(scope="module")
def tiny():
    from edgecl.data import load_mnist_sample

    xtr, ytr, xte, yte = load_mnist_sample()
    a = np.flatnonzero(ytr < 3)[:150]
    b = np.flatnonzero(yte < 3)[:60]
    return xtr[a], ytr[a], xte[b], yte[b]


@pytest.mark.parametrize("task", ["rotflipae", "plain"])
def test_one_bar_no_warning_and_a_checkpoint(tiny, tmp_path, capsys, task):
    cfg = BaseTrainConfig(base_task=task, epochs=2, n_bits=32, channels=(4, 8, 8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the torch UserWarning of float(loss) included
        model, summary = train_base(cfg, tiny, tmp_path / "b.pt", classes=[0, 1, 2], log=print)
    err = capsys.readouterr().err
    assert "host training" in err and "epoch 1/" not in err and "epoch 2/" not in err
    assert summary["classes"] == [0, 1, 2] and summary["epochs"] == 2
    _, meta = load_checkpoint(tmp_path / "b.pt")
    assert [str(c) for c in meta["class_names"]] == ["0", "1", "2"]
    assert model.head.out_features == 3


def test_config_is_checked():
    for bad in (
        dict(base_task="nope"),
        dict(epochs=0),
        dict(n_bits=0),
        dict(threads=True),
        dict(channels=()),
    ):
        with pytest.raises(ValueError):
            BaseTrainConfig(**bad)


def test_the_network_check_draws_no_weights_from_the_seeded_generator(tiny, tmp_path, monkeypatch):
    """The network F starts from ``torch.manual_seed(seed)`` as it always did: checking the
    backbone for the input (which builds one) happens before the seed is set."""
    import torch

    from edgecl.train import mnist_bnn, recipes

    started = {}

    def record(model, *args, **kwargs):
        started.update({k: v.clone() for k, v in model.state_dict().items()})

    monkeypatch.setattr(recipes, "_fit_pretext", record)
    cfg = BaseTrainConfig(n_bits=32, channels=(4, 8, 8), seed=3)
    train_base(cfg, tiny, tmp_path / "b.pt", classes=[0, 1, 2], log=lambda m: None)
    torch.manual_seed(3)
    fresh = mnist_bnn(3 * 8, n_bits=32, channels=(4, 8, 8)).state_dict()
    assert started.keys() == fresh.keys()
    assert all(torch.equal(started[k], fresh[k]) for k in fresh)
