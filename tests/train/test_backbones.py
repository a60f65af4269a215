"""Backbones: the module contract the exporter relies on, shapes, config rebuild, checkpoints."""

import pytest
import torch
from torch import nn

from edgecl.train import (
    BinaryNet,
    CheckpointError,
    HeavisideBinarizer,
    Normalize,
    QuantConv2d,
    QuantLinear,
    ThermometerBinarizer,
    ThermometerEncoder,
    build_model,
    load_checkpoint,
    mlp,
    mnist_bnn,
    save_checkpoint,
    vgg_small,
)

ALLOWED = (
    Normalize,
    nn.Conv2d,
    QuantConv2d,
    nn.BatchNorm2d,
    nn.MaxPool2d,
    nn.Flatten,
    QuantLinear,
    nn.Linear,
    nn.BatchNorm1d,
    HeavisideBinarizer,
    ThermometerBinarizer,
    ThermometerEncoder,
)

CASES = [
    (mnist_bnn, dict(channels=(5, 7, 9), n_bits=33), (1, 28, 28)),
    (
        mnist_bnn,
        dict(channels=(5, 7, 9), n_bits=30, embedding="thermometer", levels=3),
        (1, 28, 28),
    ),
    (mnist_bnn, dict(channels=(3, 5), n_bits=17, fully_binary=True, input_levels=2), (1, 28, 28)),
    (vgg_small, dict(channels=(4, 5, 6, 7, 8, 9), n_bits=21), (3, 32, 32)),
    (
        vgg_small,
        dict(channels=(4, 5, 6), n_bits=12, embedding="thermometer", levels=2),
        (3, 32, 32),
    ),
    (mlp, dict(hidden=(19, 23), n_bits=13), (1, 28, 28)),
    (mnist_bnn, dict(channels=(4, 5), n_bits=9, image_size=(12, 20)), (1, 12, 20)),
    (
        mnist_bnn,
        dict(
            channels=(4, 5, 6),
            n_bits=9,
            image_size=8,
            in_channels=3,
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
        ),
        (3, 8, 8),
    ),
    (vgg_small, dict(channels=(4, 5, 6, 7), n_bits=9, image_size=64), (3, 64, 64)),
    (
        vgg_small,
        dict(channels=(4, 5, 6), n_bits=9, image_size=4, in_channels=1, mean=0.5, std=0.25),
        (1, 4, 4),
    ),
    (mnist_bnn, dict(channels=(4, 5, 6), n_bits=9, image_size=16, pools=1), (1, 16, 16)),
    (
        mlp,
        dict(hidden=(11,), n_bits=8, fully_binary=True, embedding="thermometer", levels=2),
        (1, 28, 28),
    ),
]


@pytest.mark.parametrize("builder,kwargs,shape", CASES)
def test_backbone_contract(builder, kwargs, shape):
    torch.manual_seed(0)
    model = builder(3, **kwargs)
    assert isinstance(model, BinaryNet)
    f = model.features
    assert isinstance(f, nn.Sequential)
    assert isinstance(f[0], Normalize)
    assert isinstance(f[-1], (HeavisideBinarizer, ThermometerBinarizer))
    for m in f:
        assert isinstance(m, ALLOWED), type(m)
    assert isinstance(model.head, nn.Linear) and model.head.in_features == model.n_bits
    assert model.n_bits == kwargs["n_bits"]
    x = torch.randint(0, 256, (4, *shape)).float()
    model.train()
    logits = model(x)
    assert logits.shape == (4, 3)
    logits.sum().backward()
    assert all(
        p.grad is not None for n, p in model.named_parameters() if not n.startswith("features.0")
    )
    model.eval()
    z = model.embed(x)
    assert z.shape == (4, model.n_bits)
    assert set(z.unique().tolist()) <= {0.0, 1.0}
    assert torch.allclose(model(x), model.head(z))
    # conv -> BN -> pool order in each block
    types = [type(m) for m in f]
    for i, t in enumerate(types):
        if t is nn.MaxPool2d:
            assert types[i - 1] is nn.BatchNorm2d
    # config rebuilds the same architecture
    again = build_model(model.config)
    assert [type(m) for m in again.modules()] == [type(m) for m in model.modules()]
    again.load_state_dict(model.state_dict())
    again.eval()
    assert torch.equal(again(x), model(x))


def test_mnist_bnn_default_layout():
    m = mnist_bnn(10)
    f = m.features
    assert isinstance(f[1], nn.Conv2d) and not isinstance(f[1], QuantConv2d)
    assert (f[1].in_channels, f[1].out_channels) == (1, 64)
    binary_convs = [x for x in f if isinstance(x, QuantConv2d)]
    assert [(c.in_channels, c.out_channels) for c in binary_convs] == [(64, 128), (128, 256)]
    assert all(
        c.input_quantizer.precision == 1 and c.kernel_quantizer.precision == 1 for c in binary_convs
    )
    assert all(c.pad_value == 1.0 and c.padding == "same" for c in binary_convs)
    assert f[-1].proj.in_features == 256 * 3 * 3 and m.n_bits == 512
    assert m.config["backbone"] == "mnist_bnn"


def test_builder_validation():
    with pytest.raises(ValueError, match="embedding"):
        mnist_bnn(10, embedding="sigmoid")
    with pytest.raises(ValueError, match="divisible"):
        mnist_bnn(10, embedding="thermometer", n_bits=10, levels=3)
    with pytest.raises(ValueError, match="backbone"):
        build_model({"backbone": "resnet", "n_classes": 2})


def test_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(1)
    model = mnist_bnn(3, channels=(3, 5, 7), n_bits=9)
    model.train()
    model(torch.rand(8, 1, 28, 28) * 255)  # move BN running stats
    path = save_checkpoint(
        model, tmp_path / "sub" / "m.pt", class_names=["a", "b", "c"], meta={"epochs": 2}
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]  # no temporary left
    loaded, info = load_checkpoint(path)
    assert info["class_names"] == ["a", "b", "c"] and info["meta"] == {"epochs": 2}
    assert not loaded.training
    model.eval()
    x = torch.rand(5, 1, 28, 28) * 255
    assert torch.equal(loaded(x), model(x))


def test_checkpoint_errors(tmp_path):
    model = mnist_bnn(2, channels=(3, 5), n_bits=4)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="expected 2 class names"):
        save_checkpoint(model, tmp_path / "x.pt", class_names=["a"])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something"}, other)
    with pytest.raises(CheckpointError, match="expected format"):
        load_checkpoint(other)
    good = save_checkpoint(model, tmp_path / "good.pt", class_names=["a", "b"])
    payload = torch.load(good, weights_only=True)
    payload["state_dict"].pop("head.bias")
    torch.save(payload, other)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(other)


def test_numpy_arguments_give_a_plain_config(tmp_path):
    import numpy as np

    model = mnist_bnn(
        np.int64(2), channels=np.array([3, 5]), n_bits=np.int64(6), mean=np.float32(0.5)
    )
    assert model.config["kwargs"]["channels"] == [3, 5]
    assert type(model.config["kwargs"]["n_bits"]) is int
    path = save_checkpoint(model, tmp_path / "np.pt", class_names=["x", "y"], meta={"a": [1, 2.5]})
    loaded, info = load_checkpoint(path)
    assert loaded.config == model.config and info["meta"] == {"a": [1, 2.5]}
    # str subclasses such as torch.__version__ are stored as plain str (weights_only loads)
    path = save_checkpoint(
        model, tmp_path / "v.pt", class_names=["x", "y"], meta={"t": torch.__version__}
    )
    assert load_checkpoint(path)[1]["meta"]["t"] == str(torch.__version__)
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(model, tmp_path / "bad.pt", class_names=["x", "y"], meta={"a": np.int64(1)})


def _pools(model) -> int:
    return sum(isinstance(m, nn.MaxPool2d) for m in model.features)


def test_pool_plan_fits_the_input():
    from edgecl.train.backbones import pool_plan

    assert pool_plan(28, 28, 3) == [True, True, True]  # 28 -> 14 -> 7 -> 3, as before
    assert pool_plan(32, 32, 3) == [True, True, True]
    assert pool_plan(8, 8, 3) == [True, False, False]
    assert pool_plan(4, 4, 3) == [False, False, False]
    assert pool_plan(12, 20, 3) == [True, True, False]
    assert pool_plan(64, 64, 3) == [True, True, True]  # at most one per place
    assert pool_plan(4, 4, 3, pools=2) == [True, True, False]
    with pytest.raises(ValueError, match="at most 2 2x2 pools for a 4x4 input"):
        pool_plan(4, 4, 3, pools=3)
    with pytest.raises(ValueError, match="pools <= 1"):
        pool_plan(16, 16, 1, pools=2)


def test_defaults_keep_their_layouts():
    assert _pools(mnist_bnn(3)) == 3 and mnist_bnn(3).features[-1].proj.in_features == 2304
    vgg = vgg_small(3)
    assert _pools(vgg) == 3 and vgg.features[-1].proj.in_features == 512 * 4 * 4


def test_backbone_for_input_picks_and_refuses():
    from edgecl.train.backbones import BACKBONE_CHOICES, backbone_for_input, pick_backbone

    assert BACKBONE_CHOICES == ("auto", "mnist_bnn", "vgg_small", "mlp")
    assert pick_backbone((28, 28, 1)) == "mnist_bnn"
    assert pick_backbone((32, 32, 3)) == "vgg_small"
    assert pick_backbone((16, 16, 3)) == "mnist_bnn"
    assert pick_backbone((4, 6, 1)) == "mlp"
    for shape in [(8, 8, 1), (16, 16, 1), (32, 32, 3), (64, 64, 3), (12, 20, 1), (4, 4, 1)]:
        for name in BACKBONE_CHOICES:
            m = backbone_for_input(name, 2, shape, n_bits=8, channels=(4, 6))
            h, w, c = shape
            assert m(torch.zeros(2, c, h, w)).shape == (2, 2), (shape, name)
            assert m.config["backbone"] == (pick_backbone(shape) if name == "auto" else name)
    with pytest.raises(ValueError, match="at least 4x4"):
        backbone_for_input("auto", 2, (3, 8, 1))
    with pytest.raises(ValueError, match="pools <= 2"):
        backbone_for_input("mnist_bnn", 2, (4, 4, 1), pools=3)
    with pytest.raises(ValueError, match="no pools with the mlp"):
        backbone_for_input("mlp", 2, (8, 8, 1), pools=1)
    with pytest.raises(ValueError, match="backbone in"):
        backbone_for_input("resnet", 2, (8, 8, 1))
