"""Make the Larq model fixtures of ``tests/larq/`` (and, with ``train``, a small trained
Larq model for the import figures).

Runs in a venv with TensorFlow 2.16 + tf-keras 2.16 + larq 0.14 (the LCE venv of
benchmarks/RESULTS.md, "LCE 0.16 side by side"); edgecl's own venv has no TensorFlow and
reads the files with h5py only (:mod:`edgecl.larq`).

    /root/lce-venv/bin/python benchmarks/make_larq_fixtures.py fixtures --out tests/fixtures/larq
    /root/lce-venv/bin/python benchmarks/make_larq_fixtures.py train --out /tmp/larq-mnist

``fixtures`` writes, for each architecture, ``NAME.h5`` (one also as ``NAME.keras``) and
``NAME.npz`` holding ``x`` (uint8-valued inputs), ``bits`` (the signs TensorFlow computes at
the head's input, 1 for +1: the embedding) and ``logits`` (the head's output before any
softmax). BatchNorm statistics are set from the data (with noise, and some negative
gammas) so that the thresholds are not trivial. ``train`` trains a small Larq net on the
MNIST sample shipped with edgecl (classes 0-4) and writes ``mnist04.h5``,
``mnist04_test.npz`` and its TensorFlow test accuracy in ``mnist04.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # larq needs tf.keras 2 (tf-keras)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SAMPLES = 24


def _layers():
    import larq as lq
    import tensorflow as tf

    return tf, tf.keras, lq


def _binary_conv(lq, filters, quantizer="ste_sign", **kw):
    return lq.layers.QuantConv2D(
        filters,
        3,
        input_quantizer=quantizer,
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        use_bias=False,
        **kw,
    )


def quicknet_like():
    """A QuickNet-like stack: float-input first conv (binary kernel), one-padded binary
    blocks with the three sign quantizers, a pool, a strides-2 'same' conv on an even
    input (TensorFlow's asymmetric padding), the embedding = the last conv's bits
    (2x2x64 = 256), a float head on the signs, a softmax."""
    tf, keras, lq = _layers()
    return keras.Sequential(
        [
            keras.layers.InputLayer((16, 16, 1)),
            lq.layers.QuantConv2D(
                8, 3, padding="same", kernel_quantizer="ste_sign", use_bias=False, name="stem"
            ),
            keras.layers.BatchNormalization(name="stem_bn"),
            _binary_conv(lq, 16, padding="same", pad_values=1.0, name="block1"),
            keras.layers.BatchNormalization(name="block1_bn"),
            keras.layers.MaxPool2D(2, name="pool1"),
            _binary_conv(lq, 16, "approx_sign", padding="same", pad_values=1.0, name="block2"),
            keras.layers.BatchNormalization(name="block2_bn"),
            _binary_conv(
                lq, 64, "swish_sign", strides=2, padding="same", pad_values=1.0, name="block3"
            ),
            keras.layers.BatchNormalization(name="block3_bn"),
            keras.layers.MaxPool2D(2, name="pool2"),
            keras.layers.Flatten(name="flatten"),
            lq.layers.QuantDense(5, input_quantizer="ste_sign", name="head"),
            keras.layers.Activation("softmax", name="softmax"),
        ],
        name="quicknet_like",
    )


def zero_pad_rgb():
    """16x16x3: a float Conv2D with strides 2 'same', zero-padded binary convs (one
    strides-2 'valid'), a QuantDense embedding (32 bits) with BatchNorm, a float head."""
    tf, keras, lq = _layers()
    return keras.Sequential(
        [
            keras.layers.InputLayer((16, 16, 3)),
            keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv0"),
            keras.layers.BatchNormalization(name="bn0"),
            _binary_conv(lq, 16, padding="same", pad_values=0.0, name="conv1"),
            keras.layers.BatchNormalization(name="bn1"),
            _binary_conv(lq, 16, strides=2, padding="valid", name="conv2"),
            keras.layers.BatchNormalization(name="bn2"),
            keras.layers.Flatten(name="flat"),
            lq.layers.QuantDense(
                32,
                input_quantizer="ste_sign",
                kernel_quantizer="ste_sign",
                kernel_constraint="weight_clip",
                use_bias=False,
                name="embed",
            ),
            keras.layers.BatchNormalization(name="embed_bn"),
            lq.layers.QuantDense(4, input_quantizer="ste_sign", name="classifier"),
        ],
        name="zero_pad_rgb",
    )


def dense_embedding():
    """16x16x1: a 'valid' first conv, a pool to 7x7, a strides-2 'same' conv on an odd
    input (symmetric padding), an Activation('tanh') before the sign, a QuantDense
    embedding of 32 bits with a bias, a float head. Saved as .h5 and as .keras."""
    tf, keras, lq = _layers()
    return keras.Sequential(
        [
            keras.layers.InputLayer((16, 16, 1)),
            lq.layers.QuantConv2D(
                8, 3, padding="valid", kernel_quantizer="ste_sign", use_bias=False, name="c0"
            ),
            keras.layers.BatchNormalization(name="b0"),
            keras.layers.MaxPool2D(2, name="p0"),
            _binary_conv(lq, 16, strides=2, padding="same", pad_values=1.0, name="c1"),
            keras.layers.BatchNormalization(name="b1"),
            keras.layers.Activation("tanh", name="act"),
            keras.layers.Flatten(name="f"),
            lq.layers.QuantDense(
                32,
                input_quantizer="ste_sign",
                kernel_quantizer="ste_sign",
                kernel_constraint="weight_clip",
                name="embedding",
            ),
            keras.layers.BatchNormalization(name="b2"),
            lq.layers.QuantDense(3, input_quantizer="ste_sign", name="out"),
        ],
        name="dense_embedding",
    )


ARCHITECTURES = {
    "quicknet_like": (quicknet_like, False),
    "zero_pad_rgb": (zero_pad_rgb, False),
    "dense_embedding": (dense_embedding, True),
}


def _calibrate_bn(model, x, rng) -> None:
    """Set every BatchNormalization's statistics from its input on ``x`` (with noise)
    and its gamma/beta at random, some gammas negative: thresholds that vary."""
    tf, keras, _ = _layers()
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        sub = keras.Model(model.inputs, layer.input)
        h = sub(x, training=False).numpy()
        axes = tuple(range(h.ndim - 1))
        mean, std = h.mean(axis=axes), h.std(axis=axes) + 1e-3
        c = mean.shape[0]
        gamma = rng.uniform(0.5, 1.5, c) * np.where(rng.random(c) < 0.25, -1.0, 1.0)
        beta = rng.normal(0.0, 0.3, c)
        layer.set_weights(
            [
                gamma.astype(np.float32),
                beta.astype(np.float32),
                (mean + rng.normal(0, 0.3, c) * std).astype(np.float32),
                (std**2 * rng.uniform(0.5, 2.0, c)).astype(np.float32),
            ]
        )


def _reference(model, x):
    """TensorFlow's signs at the head's input (the embedding) and the head's output."""
    tf, keras, _ = _layers()
    head = [ly for ly in model.layers if not isinstance(ly, keras.layers.Activation)][-1]
    emb = keras.Model(model.inputs, head.input)(x, training=False).numpy()
    logits = keras.Model(model.inputs, head.output)(x, training=False).numpy()
    return (emb.reshape(len(x), -1) >= 0).astype(np.uint8), logits.astype(np.float32)


def make_fixtures(out: Path, seed: int) -> None:
    tf, keras, _ = _layers()
    out.mkdir(parents=True, exist_ok=True)
    for i, (name, (build, also_keras)) in enumerate(ARCHITECTURES.items()):
        tf.keras.utils.set_random_seed(seed + i)
        rng = np.random.default_rng(seed + i)
        model = build()
        shape = model.input_shape[1:]
        # smooth uint8-valued images (blurred noise), not pure noise, so pools and
        # thresholds see structure
        raw = rng.random((SAMPLES, *shape))
        raw = (raw + np.roll(raw, 1, 1) + np.roll(raw, 1, 2)) / 3
        x = np.round(raw * 255).astype(np.uint8).astype(np.float32)
        _calibrate_bn(model, x, rng)
        bits, logits = _reference(model, x)
        model.save(out / f"{name}.h5")
        if also_keras:
            model.save(out / f"{name}.keras")
        np.savez_compressed(out / f"{name}.npz", x=x.astype(np.uint8), bits=bits, logits=logits)
        print(f"{name}: input {shape}, embedding {bits.shape[1]} bits, logits {logits.shape}")


def _mnist_sample():
    """The MNIST sample shipped with edgecl (read here without edgecl: no torch needed)."""
    root = Path(__file__).resolve().parents[1] / "edgecl" / "data" / "sample"
    with gzip.open(root / "t10k-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(root / "t10k-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return x, y


def mnist_net():
    """A small QuickNet-like Larq net for 28x28x1 MNIST, 5 classes."""
    tf, keras, lq = _layers()
    return keras.Sequential(
        [
            keras.layers.InputLayer((28, 28, 1)),
            keras.layers.Rescaling(1.0 / 255.0, name="scale"),
            lq.layers.QuantConv2D(
                32, 3, padding="same", kernel_quantizer="ste_sign", use_bias=False, name="stem"
            ),
            keras.layers.BatchNormalization(name="stem_bn"),
            keras.layers.MaxPool2D(2, name="pool0"),
            _binary_conv(lq, 64, padding="same", pad_values=1.0, name="block1"),
            keras.layers.BatchNormalization(name="block1_bn"),
            _binary_conv(lq, 64, strides=2, padding="same", pad_values=1.0, name="block2"),
            keras.layers.BatchNormalization(name="block2_bn"),
            keras.layers.Flatten(name="flatten"),
            lq.layers.QuantDense(
                256,
                input_quantizer="ste_sign",
                kernel_quantizer="ste_sign",
                kernel_constraint="weight_clip",
                use_bias=False,
                name="embedding",
            ),
            keras.layers.BatchNormalization(name="embedding_bn"),
            lq.layers.QuantDense(5, input_quantizer="ste_sign", name="head"),
        ],
        name="mnist04",
    )


def train(out: Path, seed: int, epochs: int) -> None:
    """Train :func:`mnist_net` on the sample's classes 0-4 (the same stratified 80/20
    split edgecl's ``load_mnist_sample(test_fraction=0.2, seed=0)`` makes is not needed
    here: a fixed random 80/20 split of the 10,000 samples, saved with the model)."""
    tf, keras, _ = _layers()
    tf.keras.utils.set_random_seed(seed)
    x, y = _mnist_sample()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    cut = int(0.8 * len(x))
    tr, te = order[:cut], order[cut:]
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "mnist_split.npz", train=tr, test=te)
    base = y < 5
    xtr, ytr = x[tr][base[tr]][..., None].astype(np.float32), y[tr][base[tr]]
    xte, yte = x[te][base[te]][..., None].astype(np.float32), y[te][base[te]]
    model = mnist_net()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(xtr, ytr, batch_size=64, epochs=epochs, verbose=2)
    _, acc = model.evaluate(xte, yte, verbose=0)
    model.save(out / "mnist04.h5")
    logits = model.predict(xte, verbose=0)
    record = {
        "tensorflow_test_accuracy_0_4": float(acc),
        "test_samples_0_4": int(len(xte)),
        "epochs": epochs,
        "seed": seed,
        "tensorflow": tf.__version__,
    }
    (out / "mnist04.json").write_text(json.dumps(record, indent=1))
    np.savez_compressed(
        out / "mnist04_test.npz",
        x=x[te].astype(np.uint8),
        y=y[te],
        logits_0_4=logits.astype(np.float32),  # on the test samples of 0-4, in order
        base_mask=base[te],
    )
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    f = sub.add_parser("fixtures", help="the small fixtures of tests/larq")
    f.add_argument("--out", type=Path, default=Path("tests/fixtures/larq"))
    f.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("train", help="train a small Larq net on the MNIST sample, 0-4")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.what == "fixtures":
        make_fixtures(args.out, args.seed)
    else:
        train(args.out, args.seed, args.epochs)


if __name__ == "__main__":
    main()
