"""The typed Manifest: it reads every section a bundle holds and writes the same manifest
back, and ``with_state`` gives the bytes the device's save gives today."""

from __future__ import annotations

import copy
import dataclasses
import random
from pathlib import Path

import numpy as np
import pytest

from edgecl.bundle import (
    MAX_HEAD_BATCH_SIZE,
    MAX_HEAD_EPOCHS,
    BudgetSpec,
    HeadSpec,
    Manifest,
    bundle_bytes,
    encode_head,
    read_bundle,
)
from edgecl.bundle.manifest import CONTAINER_KEYS
from edgecl.device import Runtime
from edgecl.errors import BundleError
from edgecl.program.ops import MAX_VALUES_PER_SAMPLE

V1 = Path(__file__).resolve().parents[1] / "fixtures" / "v1_bundle.ecl"


def _semantic(manifest):
    return {k: v for k, v in manifest.items() if k not in CONTAINER_KEYS}


def test_round_trip_gives_the_same_bytes():
    manifest, arrays = read_bundle(V1)
    typed = Manifest.from_dict(manifest, arrays)
    assert typed.to_dict() == _semantic(manifest)
    assert bundle_bytes(typed.to_dict(), arrays) == V1.read_bytes()
    assert typed.head.bits == 8 and typed.head_refs.scale == "head.weight.scale"
    assert typed.classes == ("a", "b", "c") and typed.memory.kind == "gbm"
    # read from the arrays table alone (before any array is read): the same manifest
    assert Manifest.from_dict(manifest) == typed


def _state(rt, **kw):
    lr = rt.learner
    typed = Manifest.from_dict(rt.manifest, rt.arrays)
    return typed.with_state(
        rt.arrays,
        classes=lr.classes,
        head_weight=lr.weight,
        head_bias=lr.bias,
        memory=lr.memory,
        budget=BudgetSpec(lr.budget_bytes, lr.policy),
        **kw,
    )


def _dict_surgery_save(lr, manifest, arrays):
    """What ``Runtime.save`` wrote before the typed manifest (``Learner.manifest_update``
    of commit 05eed10, kept here as the reference ``with_state`` must match)."""
    man = copy.deepcopy(dict(manifest))
    for key in ("format", "schema_version", "creator", "arrays"):
        man.pop(key, None)
    old_mem = man.get("memory") or {}
    out = {k: v for k, v in arrays.items() if k not in set((old_mem.get("arrays") or {}).values())}
    head = dict(man["head"])
    out.pop(head.get("scale"), None)
    stored = encode_head(lr.weight, lr.head_bits)
    out[head["weight"]], out[head["bias"]] = stored["weight"], lr.bias.copy()
    head["bits"] = lr.head_bits
    head.pop("scale", None)
    if "scale" in stored:
        head["scale"] = f"{head['weight']}.scale"
        out[head["scale"]] = stored["scale"]
    man["head"], man["classes"] = head, list(lr.classes)
    spec, mem_arrays = lr.memory.to_state()
    refs = {key: f"memory.{key}" for key in sorted(mem_arrays)}
    new_mem = {k: v for k, v in old_mem.items() if k not in ("spec", "arrays", "nbytes")}
    new_mem.update({"kind": lr.memory.kind, "spec": spec, "arrays": refs})
    new_mem["nbytes"] = int(lr.memory.nbytes)
    new_mem["head_bytes_per_class"] = lr.head_bytes_per_class
    man["memory"] = new_mem
    for key, ref in refs.items():
        out[ref] = np.asarray(mem_arrays[key])
    man["budget"] = {"bytes": lr.budget_bytes, "policy": lr.policy}
    return man, out


def test_with_state_gives_what_the_learner_saves():
    want = np.load(V1.parent / "v1_expected.npz")
    rt = Runtime.load(V1)
    rt.learn_class("d", want["new"], seed=3)
    for step in ("learned", "forgot"):
        if step == "forgot":
            rt.forget_class("b")
        manifest, arrays = _state(rt)
        old_manifest, old_arrays = _dict_surgery_save(rt.learner, rt.manifest, rt.arrays)
        assert bundle_bytes(manifest.to_dict(), arrays) == bundle_bytes(old_manifest, old_arrays)
        assert Manifest.from_dict(manifest.to_dict(), arrays) == manifest


def test_with_state_can_change_the_head_precision():
    rt = Runtime.load(V1)
    manifest, arrays = _state(
        rt, head=dataclasses.replace(Manifest.from_dict(rt.manifest).head, bits=32)
    )
    assert manifest.head_refs.scale is None and "head.weight.scale" not in arrays
    assert arrays["head.weight"].dtype == np.float32
    again = Manifest.from_dict(manifest.to_dict(), arrays)
    assert again.head.bits == 32
    np.testing.assert_array_equal(arrays["head.weight"], rt.learner.weight)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(epochs=MAX_HEAD_EPOCHS + 1),
        dict(batch_size=MAX_HEAD_BATCH_SIZE + 1),
        dict(batch_size=0),
        dict(lr=float("inf")),
        dict(lr=-0.1),
        dict(gbm_weight=float("nan")),
        dict(weight_decay=-1.0),
        dict(bits=4),
        dict(epochs=2.0),
    ],
)
def test_head_spec_bounds(kwargs):
    with pytest.raises(ValueError):
        HeadSpec(**kwargs)
    head = {"weight": "w", "bias": "b", **HeadSpec().to_dict(), **kwargs}
    with pytest.raises(BundleError, match="head"):
        HeadSpec.from_dict(head)


def test_head_spec_round_trip():
    spec = HeadSpec(lr=1, epochs=3, batch_size=32, weight_decay=0.001, bits=16, gbm_weight=0.5)
    head = {"weight": "w", "bias": "b", "bits": 16, "onnx": "g", **spec.to_dict()}
    assert HeadSpec.from_dict(head) == spec
    assert isinstance(HeadSpec.from_dict(head).lr, int)  # numbers kept as written


JUNK = [None, -1, 0, 10**400, "x", "", [], {}, 1e308, True, 2**70, [1, 2], {"a": 1}, "a\nb"]


def _leaves(d, path=()):
    items = d.items() if isinstance(d, dict) else enumerate(d) if isinstance(d, list) else ()
    for k, v in items:
        yield path + (k,)
        yield from _leaves(v, path + (k,))


def test_garbage_anywhere_is_refused_with_bundle_error():
    """Any value of the manifest replaced by junk: accepted, or refused with BundleError
    (never a TypeError, KeyError or OverflowError from deep inside)."""
    manifest0, arrays = read_bundle(V1)
    paths = [p for p in _leaves(manifest0) if p[0] not in CONTAINER_KEYS]
    rng = random.Random(0)
    refused = 0
    for _ in range(1500):
        manifest = copy.deepcopy(manifest0)
        path = rng.choice(paths)
        d = manifest
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = copy.deepcopy(rng.choice(JUNK))
        for given in (arrays, None):
            try:
                Manifest.from_dict(manifest, given)
            except BundleError:
                refused += 1
    assert refused > 1500


def test_a_layer_output_beyond_the_per_sample_cap_is_refused():
    manifest, arrays = read_bundle(V1)
    conv = manifest["layers"][0]
    conv["pads"] = [5000] * 4  # a consistent, huge output: (10026, 10026, 7)
    side = 28 + 2 * 5000 - 3 + 1
    conv["out_shape"] = [side, side, 7]
    assert side * side * 7 > MAX_VALUES_PER_SAMPLE
    with pytest.raises(BundleError, match="values per sample"):
        Manifest.from_dict(manifest, arrays)
