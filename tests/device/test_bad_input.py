"""Hostile input on the device API (issue 13 item 16), one table per verb.

Every refused call raises an :class:`~edgecl.errors.EdgeclError` that is also a ValueError /
TypeError / KeyError, with a message saying what was expected, and leaves the runtime
byte-identical (the bytes of
``save()`` before and after). Inputs that are accepted (Python lists, views with odd
strides, other numeric dtypes, one sample) give the same answer as the plain array.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from edgecl.device import Runtime
from edgecl.errors import (
    BundleError,
    ClassExistsError,
    EdgeclError,
    InvalidTypeError,
    InvalidValueError,
    UnknownClassError,
)


@pytest.fixture
def rt(bundle) -> Runtime:
    return Runtime.load(bundle)


@pytest.fixture
def samples(stream):
    x, y, _, _ = stream
    return x[y == 3][:10]  # 10 samples of a class the bundle has not learned


def _saved(rt: Runtime, path) -> bytes:
    rt.save(path)
    return path.read_bytes()


# -- samples: refused (predict, predict_proba, embed, learn_class, update_class) ---------------


def _nan(x):
    f = x.astype(np.float32)
    f[0, 0, 0] = np.nan
    return f


def _inf(x):
    f = x.astype(np.float64)
    f[-1, 2, 3] = -np.inf
    return f


BAD_SAMPLES = [
    # (id, make(x) -> bad input, exception, message part)
    ("one image without the batch axis", lambda x: x[0], ValueError, r"\(k, 8, 8\)"),
    ("an extra axis", lambda x: x[None], ValueError, r"\(k, 8, 8\)"),
    ("flat rows", lambda x: x.reshape(len(x), -1), ValueError, r"\(k, 8, 8\)"),
    ("wrong height and width", lambda x: x[:, :4, :6], ValueError, r"\(k, 8, 8\)"),
    ("three channels", lambda x: np.repeat(x[..., None], 3, -1), ValueError, r"\(k, 8, 8\)"),
    ("empty batch", lambda x: x[:0], ValueError, "at least one sample"),
    ("bool", lambda x: x > 100, TypeError, "dtype bool"),
    ("object", lambda x: x.astype(object), TypeError, "dtype object"),
    ("str", lambda x: x.astype(str), TypeError, "dtype <U"),
    ("complex", lambda x: x.astype(np.complex64), TypeError, "dtype complex"),
    ("NaN", _nan, ValueError, "finite"),
    ("-inf", _inf, ValueError, "finite"),
    ("None", lambda x: None, TypeError, "dtype object"),
    ("a ragged list", lambda x: [x[0], x[1][:4]], ValueError, "shape"),
    ("a scalar", lambda x: 3.0, ValueError, r"\(k, 8, 8\)"),
]

VERBS_ON_SAMPLES = {
    "predict": lambda rt, x: rt.predict(x),
    "predict_proba": lambda rt, x: rt.predict_proba(x),
    "embed": lambda rt, x: rt.embed(x),
    "learn_class": lambda rt, x: rt.learn_class("new", x, seed=0),
    "update_class": lambda rt, x: rt.update_class("c0", x, seed=0),
}


@pytest.mark.parametrize("verb", sorted(VERBS_ON_SAMPLES))
@pytest.mark.parametrize(("make", "exc", "match"), [c[1:] for c in BAD_SAMPLES],
                         ids=[c[0] for c in BAD_SAMPLES])  # fmt: skip
def test_bad_samples_are_refused_and_change_nothing(rt, samples, tmp_path, verb, make, exc, match):
    before = _saved(rt, tmp_path / "before.ecl")
    bad = make(samples)
    keep = None if not isinstance(bad, np.ndarray) else bad.copy()
    with pytest.raises(exc, match=match) as info:
        VERBS_ON_SAMPLES[verb](rt, bad)
    assert isinstance(info.value, EdgeclError)
    assert _saved(rt, tmp_path / "after.ecl") == before
    if keep is not None:  # the caller's array is never modified
        np.testing.assert_array_equal(bad, keep)


# -- samples: accepted, with the plain array's answer ----------------------------------------

SAME_ANSWER = [
    # (id, make(x) -> input, how the answer relates to that of x)
    ("a Python list of images", lambda x: list(x), lambda a: a),
    ("nested Python lists", lambda x: x.tolist(), lambda a: a),
    ("a negative-stride view", lambda x: x[::-1], lambda a: a[::-1]),
    ("rows read backwards", lambda x: np.ascontiguousarray(x[:, ::-1])[:, ::-1], lambda a: a),
    ("a non-contiguous view", lambda x: np.repeat(x, 2, axis=0)[::2], lambda a: a),
    ("Fortran order", lambda x: np.asfortranarray(x), lambda a: a),
    ("with a channel axis", lambda x: x[..., None], lambda a: a),
    ("float64", lambda x: x.astype(np.float64), lambda a: a),
    ("int64", lambda x: x.astype(np.int64), lambda a: a),
    ("one sample", lambda x: x[:1], lambda a: a[:1]),
    ("one sample as a view", lambda x: x[-1:], lambda a: a[-1:]),
]


@pytest.mark.parametrize(("make", "relate"), [c[1:] for c in SAME_ANSWER],
                         ids=[c[0] for c in SAME_ANSWER])  # fmt: skip
def test_accepted_forms_give_the_plain_arrays_answer(rt, samples, make, relate):
    want_z = rt.embed(samples)
    want_p = rt.predict_proba(samples)
    want_c = rt.predict(samples)
    x = make(samples)
    np.testing.assert_array_equal(rt.embed(x), relate(want_z))
    np.testing.assert_array_equal(rt.predict_proba(x), relate(want_p))
    np.testing.assert_array_equal(rt.predict(x), relate(want_c))


@pytest.mark.parametrize(("make", "relate"), [c[1:] for c in SAME_ANSWER if "one" not in c[0]],
                         ids=[c[0] for c in SAME_ANSWER if "one" not in c[0]])  # fmt: skip
def test_learning_from_accepted_forms_gives_the_same_bundle(
    bundle, samples, tmp_path, make, relate
):
    a, b = Runtime.load(bundle), Runtime.load(bundle)
    a.learn_class("new", relate(samples), seed=1, trace_memory=False)
    b.learn_class("new", make(samples), seed=1, trace_memory=False)
    assert _saved(a, tmp_path / "a.ecl") == _saved(b, tmp_path / "b.ecl")


# -- class names and the other arguments of the learning verbs -------------------------------

BAD_NAMES = [
    ("empty", "", InvalidValueError, "non-empty"),
    ("not a str", 3, InvalidTypeError, "as str, got int"),
    ("None", None, InvalidTypeError, "as str, got NoneType"),
    ("bytes", b"cat", InvalidTypeError, "as str, got bytes"),
    ("10,000 characters", "x" * 10_000, InvalidValueError, "10000 characters"),
    ("a slash", "cats/dogs", InvalidValueError, "without '/'"),
    ("a backslash", "cats\\dogs", InvalidValueError, "without '/'"),
    ("a newline", "cat\n", InvalidValueError, "printable"),
    ("a NUL", "c\x00t", InvalidValueError, "printable"),
    ("an escape", "\x1b[31mred", InvalidValueError, "printable"),
]

VERBS_ON_NAMES = {
    "learn_class": lambda rt, name, x: rt.learn_class(name, x, seed=0),
    "update_class": lambda rt, name, x: rt.update_class(name, x, seed=0),
    "forget_class": lambda rt, name, x: rt.forget_class(name),
}


@pytest.mark.parametrize("verb", sorted(VERBS_ON_NAMES))
@pytest.mark.parametrize(("name", "exc", "match"), [c[1:] for c in BAD_NAMES],
                         ids=[c[0] for c in BAD_NAMES])  # fmt: skip
def test_bad_class_names_are_refused_and_change_nothing(
    rt, samples, tmp_path, verb, name, exc, match
):
    before = _saved(rt, tmp_path / "before.ecl")
    with pytest.raises(exc, match=match) as info:
        VERBS_ON_NAMES[verb](rt, name, samples)
    assert isinstance(info.value, EdgeclError)
    assert len(str(info.value)) < 500  # a 10,000-character name is not echoed whole
    assert _saved(rt, tmp_path / "after.ecl") == before


BAD_CALLS = [
    # (id, call(rt, x), exception, message part)
    ("learn a learned name", lambda rt, x: rt.learn_class("c1", x), ClassExistsError,
     "update_class"),
    ("update an unknown name", lambda rt, x: rt.update_class("cat", x), UnknownClassError,
     r"'cat' \(classes: \['c0', 'c1', 'c2'\]\)"),
    ("forget an unknown name", lambda rt, x: rt.forget_class("cat"), UnknownClassError,
     r"classes: \['c0', 'c1', 'c2'\]"),
    ("epochs 0", lambda rt, x: rt.learn_class("new", x, epochs=0), InvalidValueError, "epochs"),
    ("epochs -1", lambda rt, x: rt.update_class("c0", x, epochs=-1), InvalidValueError, "epochs"),
    ("epochs 1.5", lambda rt, x: rt.learn_class("new", x, epochs=1.5), InvalidValueError, "epochs"),
    ("epochs True", lambda rt, x: rt.learn_class("new", x, epochs=True), InvalidValueError,
     "epochs"),
    ("seed 'abc'", lambda rt, x: rt.learn_class("new", x, seed="abc"), InvalidTypeError, "seed"),
    ("seed -1", lambda rt, x: rt.update_class("c0", x, seed=-1), InvalidValueError, "seed"),
    ("fewer samples than K", lambda rt, x: rt.learn_class("new", x[:1]), InvalidValueError,
     "at least K=2"),
    ("save to a number", lambda rt, x: rt.save(7), InvalidTypeError, "path"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "match"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])  # fmt: skip
def test_bad_calls_are_refused_and_change_nothing(rt, samples, tmp_path, call, exc, match):
    before = _saved(rt, tmp_path / "before.ecl")
    with pytest.raises(exc, match=match) as info:
        call(rt, samples)
    assert isinstance(info.value, EdgeclError)
    assert _saved(rt, tmp_path / "after.ecl") == before


def test_the_last_class_stays(rt, tmp_path):
    rt.forget_class("c0")
    rt.forget_class("c1")
    before = _saved(rt, tmp_path / "before.ecl")
    with pytest.raises(InvalidValueError, match="at least one class"):
        rt.forget_class("c2")
    assert _saved(rt, tmp_path / "after.ecl") == before


def test_unknown_class_error_is_a_key_error_with_a_plain_message(rt):
    with pytest.raises(KeyError) as info:
        rt.forget_class("cat")
    assert str(info.value).startswith("expected a learned class, got 'cat'")  # no extra quotes


# -- Runtime.load --------------------------------------------------------------------------


def _other_zip(tmp_path):
    p = tmp_path / "other.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("readme.txt", "not a bundle")
    return p


def _not_zip(tmp_path):
    p = tmp_path / "junk.ecl"
    p.write_bytes(b"PK\x03\x04 but not really a zip" * 10)
    return p


def _empty(tmp_path):
    p = tmp_path / "empty.ecl"
    p.write_bytes(b"")
    return p


BAD_PATHS = [
    ("a directory", lambda tmp: tmp, BundleError, "bundle file"),
    ("a missing path", lambda tmp: tmp / "nope.ecl", BundleError, "bundle file"),
    ("a non-zip", _not_zip, BundleError, "zip"),
    ("an empty file", _empty, BundleError, "zip"),
    ("a zip of another kind", _other_zip, BundleError, "manifest.json"),
    ("a number", lambda tmp: 42, InvalidTypeError, "path"),
    ("None", lambda tmp: None, InvalidTypeError, "path"),
]


@pytest.mark.parametrize(("make", "exc", "match"), [c[1:] for c in BAD_PATHS],
                         ids=[c[0] for c in BAD_PATHS])  # fmt: skip
def test_load_refuses_what_is_not_a_bundle(tmp_path, make, exc, match):
    with pytest.raises(exc, match=match) as info:
        Runtime.load(make(tmp_path))
    assert isinstance(info.value, EdgeclError)


BAD_OPTIONS = [
    ("threads 0", dict(threads=0), InvalidValueError, "threads"),
    ("threads '2'", dict(threads="2"), InvalidValueError, "threads"),
    ("threads 1.5", dict(threads=1.5), InvalidValueError, "threads"),
    ("backend 'cuda'", dict(backend="cuda"), InvalidValueError, "backend"),
    ("budget 0", dict(budget_bytes=0), InvalidValueError, "budget bytes"),
    ("budget '1k'", dict(budget_bytes="1k"), InvalidValueError, "budget bytes"),
    ("budget True", dict(budget_bytes=True), InvalidValueError, "budget bytes"),
]


@pytest.mark.parametrize(("options", "exc", "match"), [c[1:] for c in BAD_OPTIONS],
                         ids=[c[0] for c in BAD_OPTIONS])  # fmt: skip
def test_load_refuses_bad_options(bundle, options, exc, match):
    with pytest.raises(exc, match=match) as info:
        Runtime.load(bundle, **options)
    assert isinstance(info.value, EdgeclError)


@pytest.mark.parametrize("name", ["c/1", "c\\1", "c\n1", "x" * 129])
def test_load_refuses_class_names_the_device_refuses(tmp_path, stream, bundle_maker, name):
    from edgecl.bundle import read_bundle, write_bundle

    x, y, _, _ = stream
    m = y < 2
    path = bundle_maker(tmp_path / "b.ecl", x[m], y[m], ["c0", "c1"], memory=None)
    manifest, arrays = read_bundle(path)
    for key in ("format", "schema_version", "creator", "arrays"):
        manifest.pop(key)
    manifest["classes"] = ["c0", name]
    write_bundle(tmp_path / "bad.ecl", manifest, arrays)
    with pytest.raises(BundleError, match="class name"):
        Runtime.load(tmp_path / "bad.ecl")
