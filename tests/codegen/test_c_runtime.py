"""The C99 runtime of ``edgecl export-c`` against the Python runtime, through a C driver.

Default suite: the shipped compile bundle (the demo's network, int8 head, GBM K=6 q=2,
gbm_weight 0.1), a few images: forward bit-exact, one class learned with the same
ECL-RNG seed as Python (class memory bit-identical, the same stored bytes, predictions
agreeing), strict and adapt budgets, hostile state bytes, failed calls changing nothing,
ASan/UBSan, clang, aarch64 and Cortex-M4 under QEMU. ``-m slow``: the 10,000 images and
the full protocol (classes 5..9, 100 images each, seeds 0..4)."""

from __future__ import annotations

import numpy as np
import pytest
from c_build import (
    A64_PACKAGES,
    M4_PACKAGES,
    build_host,
    build_m4,
    embeddings,
    have,
    parse_state,
    predictions,
    results,
    run,
    run_m4,
    write_images,
)

from edgecl.bundle import read_bundle, write_bundle
from edgecl.codegen.c import export_c
from edgecl.data import load_idx_pair, sample_dir
from edgecl.device import Runtime
from edgecl.errors import BudgetError
from edgecl.memory.quantize import unpack_levels

pytestmark = pytest.mark.skipif(not have("gcc"), reason="needs gcc (apt-get install gcc)")

BUNDLE = sample_dir() / "compile.ecl"


@pytest.fixture(scope="module")
def mnist():
    return load_idx_pair(
        sample_dir() / "t10k-images-idx3-ubyte.gz", sample_dir() / "t10k-labels-idx1-ubyte.gz"
    )


def _export(bundle, folder):
    export_c(bundle, folder, measure_stack=False)
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return _export(BUNDLE, tmp_path_factory.mktemp("c"))


@pytest.fixture(scope="module")
def driver(exported, tmp_path_factory):
    out = tmp_path_factory.mktemp("bin") / "driver"
    extra = ("-DDRIVER_SAMPLES=100", "-DDRIVER_CLASSES=10", "-DDRIVER_UPDATE_COUNT=200")
    return build_host(exported, out, extra=extra)


def _script(tmp_path, lines):
    path = tmp_path / "script.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _forward_script(tmp_path, x):
    images = write_images(tmp_path / "images.bin", x)
    return _script(tmp_path, [f"embed {images} {len(x)}", f"predict {images} {len(x)}"])


def _python_indices(rt, x):
    names = list(rt.classes_)
    return np.array([names.index(c) for c in rt.predict(x)])


def _check_forward(lines, x):
    rt = Runtime.load(BUNDLE)
    np.testing.assert_array_equal(embeddings(lines), rt.embed(x))
    np.testing.assert_array_equal(predictions(lines), _python_indices(rt, x))


def test_export_writes_the_project(exported):
    for name in ("edgecl.h", "edgecl.c", "edgecl_model.c", "Makefile", "README.md"):
        assert (exported / name).is_file()
    assert (exported / "board" / "mps2_an386.ld").is_file()
    header = (exported / "edgecl.h").read_text()
    for macro in ("ECL_INPUT_H 28", "ECL_INPUT_W 28", "ECL_INPUT_C 1", "ECL_CTX_BYTES"):
        assert f"#define {macro}" in header
    runtime = (exported / "edgecl.c").read_text()
    includes = {line.split()[1] for line in runtime.splitlines() if line.startswith("#include")}
    assert includes == {"<math.h>", "<stddef.h>", "<stdint.h>", "<string.h>", '"edgecl.h"',
                        '"edgecl_blocks.h"'}  # fmt: skip
    assert "malloc(" not in runtime and "static int " in runtime


def test_export_refuses_a_non_empty_folder(exported):
    with pytest.raises(FileExistsError):
        export_c(BUNDLE, exported)


def test_forward_is_bit_exact(driver, tmp_path, mnist):
    x = mnist[0][:40]
    _check_forward(run([str(driver), str(_forward_script(tmp_path, x))]), x)


@pytest.mark.skipif(not have("clang"), reason="needs clang (apt-get install clang)")
def test_clang_build_gives_the_same_answers(exported, driver, tmp_path, mnist):
    clang = build_host(exported, tmp_path / "driver_clang", cc="clang")
    script = _forward_script(tmp_path, mnist[0][:10])
    assert results(run([str(clang), str(script)])) == results(run([str(driver), str(script)]))


def _learn_script(tmp_path, x, y, classes, n, test, extra=()):
    lines = []
    for seed, c in enumerate(classes):
        path = write_images(tmp_path / f"class{c}.bin", x[y == c][:n])
        lines.append(f"learn {c} {path} {n} {seed}")
    test_path = write_images(tmp_path / "test.bin", test)
    lines += [f"predict {test_path} {len(test)}", f"save {tmp_path / 'state.bin'}", *extra]
    return _script(tmp_path, lines)


def _python_learn(bundle, x, y, classes, n, **load):
    rt = Runtime.load(bundle, **load)
    for seed, c in enumerate(classes):
        rt.learn_class(str(c), x[y == c][:n], seed=seed, trace_memory=False)
    return rt


def test_learning_matches_python(driver, tmp_path, mnist):
    x, y = mnist
    test = x[5000:5200]
    lines = run([str(driver), str(_learn_script(tmp_path, x, y, [5], 30, test, ["names"]))])
    rt = _python_learn(BUNDLE, x, y, [5], 30)
    learn = [line for line in lines if line.startswith("L ")]
    assert learn == [f"L 0 {rt.memory().stored_bytes} 6"]
    assert [line[2:] for line in lines if line.startswith("N ")] == list(rt.classes_)
    # the class memory is bit-identical: the same draws, EM in the same order
    stored = parse_state((tmp_path / "state.bin").read_bytes(), 512, 8)
    mem = rt.learner.memory
    for cls in stored:
        np.testing.assert_array_equal(
            unpack_levels(cls.words, cls.k, 512, cls.q),
            unpack_levels(_words_of(mem, cls.name), cls.k, 512, cls.q),
        )
        np.testing.assert_array_equal(cls.pi, mem.mixing_weights(cls.name).astype(np.float32))
        assert cls.count == mem.count(cls.name)
    # the head differs only in float rounding order (Numba's fastmath SGD)
    agree = np.mean(predictions(lines) == _python_indices(rt, test))
    assert agree >= 0.98


def _words_of(mem, name, n_bits=512):
    spec, arrays = mem.to_state()
    start = 0
    for entry in spec["classes"]:
        nw = -(-(entry["components"] * n_bits * entry["bits"]) // 64)
        if entry["name"] == name:
            return arrays["prototypes"][start : start + nw]
        start += nw
    raise KeyError(name)


def _bundle_with_budget(tmp_path, budget, policy):
    manifest, arrays = read_bundle(BUNDLE)
    man = {
        k: v
        for k, v in manifest.items()
        if k not in ("format", "schema_version", "creator", "arrays")
    }
    man["budget"] = {"bytes": budget, "policy": policy}
    path = tmp_path / f"{policy}.ecl"
    write_bundle(path, man, arrays)
    return path


@pytest.mark.parametrize("policy", ["strict", "adapt"])
def test_budget_policies_match_python(tmp_path, mnist, policy):
    x, y = mnist
    bundle = _bundle_with_budget(tmp_path, 7500, policy)
    folder = _export(bundle, tmp_path / "c")
    drv = build_host(
        folder, tmp_path / "driver", extra=("-DDRIVER_SAMPLES=40", "-DDRIVER_CLASSES=6")
    )
    test = x[6000:6100]
    lines = run([str(drv), str(_learn_script(tmp_path, x, y, [5], 40, test))])
    learn = [line for line in lines if line.startswith("L ")]
    if policy == "strict":
        with pytest.raises(BudgetError):
            _python_learn(bundle, x, y, [5], 40)
        assert learn == ["L -4 6580 5"]  # ECL_E_BUDGET, nothing changed
        return
    rt = _python_learn(bundle, x, y, [5], 40)
    assert learn == [f"L 0 {rt.memory().stored_bytes} 6"]
    stored = parse_state((tmp_path / "state.bin").read_bytes(), 512, 8)
    mem = rt.learner.memory
    assert [(c.name, c.k, c.q) for c in stored] == [
        (c, mem.class_size(c).components, mem.class_size(c).bits) for c in mem.classes
    ]
    for cls in stored:  # the refit class too: the same draws from its old mixture
        np.testing.assert_array_equal(cls.words, _words_of(mem, cls.name))
    assert np.mean(predictions(lines) == _python_indices(rt, test)) >= 0.98


def test_failed_calls_change_nothing(driver, tmp_path, mnist):
    x, y = mnist
    path = write_images(tmp_path / "c5.bin", x[y == 5][:3])
    lines = run([str(driver), str(_script(tmp_path, [
        f"learn new {path} 3 1",  # fewer samples than K = 6 prototypes
        f"abort new {path} 3",    # begin, add, abort; then a commit without begin
        "forget nope", "forget 4", "names",
    ]))])  # fmt: skip
    assert results(lines) == [
        "L -10 6580 5", "A 0 -9 1", "F -6", "F 0", "N 0", "N 1", "N 2", "N 3",
    ]  # fmt: skip


def test_a_name_that_does_not_fit_the_name_pool_is_refused(exported, tmp_path, mnist):
    """The pending name waits in the name pool's tail: the 11th 128-byte name does not fit
    (5 base names, 24 bytes per further class of 55): refused, nothing changed."""
    x, y = mnist
    drv = build_host(
        exported, tmp_path / "drv16", extra=("-DDRIVER_SAMPLES=6", "-DDRIVER_CLASSES=16")
    )
    path = write_images(tmp_path / "c5.bin", x[y == 5][:6])
    names = [f"{i:03d}" + "x" * 125 for i in range(11)]
    lines = run([str(drv), str(_script(tmp_path, [
        *(f"learn {name} {path} 6 {i}" for i, name in enumerate(names)), "names",
    ]))])  # fmt: skip
    learned = [line.split() for line in lines if line.startswith("L ")]
    assert [int(v[1]) for v in learned] == [0] * 10 + [-12]  # ECL_E_CAPACITY
    assert learned[-1][2:] == learned[-2][2:] == [learned[-2][2], "15"]  # nothing changed
    assert [line[2:] for line in lines if line.startswith("N ")][5:] == names[:10]


def test_update_matches_python(driver, tmp_path, mnist):
    """learn_begin on a learned name adds samples to it (Runtime.update_class): the class
    memory refit on draws from its mixture plus the new samples, bit-identical."""
    x, y = mnist
    five, three = x[y == 5], x[y == 3]
    files = [write_images(tmp_path / f"u{i}.bin", a) for i, a in
             enumerate((five[:30], five[30:60], three[:25]))]  # fmt: skip
    test = write_images(tmp_path / "t.bin", x[5000:5200])
    lines = run([str(driver), str(_script(tmp_path, [
        f"learn 5 {files[0]} 30 0", f"learn 5 {files[1]} 30 1", f"learn 3 {files[2]} 25 2",
        f"predict {test} 200", f"save {tmp_path / 'state.bin'}",
    ]))])  # fmt: skip
    rt = Runtime.load(BUNDLE)
    rt.learn_class("5", five[:30], seed=0, trace_memory=False)
    rt.update_class("5", five[30:60], seed=1)
    rt.update_class("3", three[:25], seed=2)
    stored = rt.memory().stored_bytes
    assert [line for line in lines if line.startswith("L ")] == [f"L 0 {stored} 6"] * 3
    mem = rt.learner.memory
    for cls in parse_state((tmp_path / "state.bin").read_bytes(), 512, 8):
        assert cls.count == mem.count(cls.name)
        np.testing.assert_array_equal(cls.words, _words_of(mem, cls.name))
    assert np.mean(predictions(lines) == _python_indices(rt, x[5000:5200])) >= 0.98


def test_state_refuses_hostile_bytes(driver, tmp_path, mnist):
    x, y = mnist
    state = tmp_path / "state.bin"
    path = write_images(tmp_path / "c7.bin", x[y == 7][:12])
    lines = run([str(driver), str(_script(tmp_path, [
        f"learn 7 {path} 12 2", f"save {state}", f"hostile {state}", "forget 7", f"load {state}",
        "names",
    ]))])  # fmt: skip
    assert "H 0 0" in lines  # no truncation or flipped bit accepted, the state unchanged
    assert "R 0" in lines
    assert [line for line in lines if line.startswith("N ")][-1] == "N 7"


@pytest.mark.skipif(not have("gcc"), reason="needs gcc")
def test_sanitizers_on_the_learn_protocol(exported, tmp_path, mnist):
    x, y = mnist
    drv = build_host(
        exported, tmp_path / "driver_san",
        extra=("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1",
               "-DDRIVER_SAMPLES=20", "-DDRIVER_CLASSES=7"),
    )  # fmt: skip
    script = _learn_script(
        tmp_path, x, y, [5, 6], 20, x[:5], [f"hostile {tmp_path / 'state.bin'}", "forget 5"]
    )
    lines = run([str(drv), str(script)])
    assert [line for line in lines if line.startswith("L ")][-1].startswith("L 0 ")
    assert "H 0 0" in lines


@pytest.mark.skipif(
    not have("aarch64-linux-gnu-gcc", "qemu-aarch64"),
    reason=f"needs an aarch64 cross toolchain and QEMU (apt-get install {A64_PACKAGES})",
)
def test_aarch64_linux_gives_the_host_answers(exported, driver, tmp_path, mnist):
    x, y = mnist
    a64 = build_host(
        exported, tmp_path / "driver_a64", cc="aarch64-linux-gnu-gcc",
        extra=("-static", "-DDRIVER_SAMPLES=100", "-DDRIVER_CLASSES=10"),
    )  # fmt: skip
    script = _learn_script(tmp_path, x, y, [5], 20, x[:10])
    assert results(run(["qemu-aarch64", str(a64), str(script)])) == results(
        run([str(driver), str(script)])
    )


@pytest.mark.skipif(
    not have("arm-none-eabi-gcc", "qemu-system-arm"),
    reason=f"needs the Cortex-M4 toolchain and QEMU (apt-get install {M4_PACKAGES})",
)
def test_cortex_m4_gives_the_host_answers(exported, driver, tmp_path, mnist):
    elf = build_m4(exported, tmp_path / "driver.elf", ("-DDRIVER_SAMPLES=20", "-DDRIVER_CLASSES=6"))
    script = _forward_script(tmp_path, mnist[0][:4])
    assert results(run_m4(elf, script)) == results(run([str(driver), str(script)]))


@pytest.mark.slow
def test_forward_on_every_sample_image(driver, tmp_path, mnist):
    x = mnist[0]
    _check_forward(run([str(driver), str(_forward_script(tmp_path, x))], timeout=3600), x)


@pytest.mark.slow
def test_full_protocol_agrees_with_python(driver, tmp_path, mnist):
    x, y = mnist
    test = x[5000:]
    lines = run([str(driver), str(_learn_script(tmp_path, x, y, range(5, 10), 100, test))], 3600)
    rt = _python_learn(BUNDLE, x, y, range(5, 10), 100)
    c_pred, py_pred = predictions(lines), _python_indices(rt, test)
    assert np.mean(c_pred == py_pred) >= 0.995
    labels = y[5000:]
    assert abs(np.mean(c_pred == labels) - np.mean(py_pred == labels)) <= 0.003


@pytest.mark.slow
@pytest.mark.skipif(
    not have("arm-none-eabi-gcc", "qemu-system-arm"),
    reason=f"needs the Cortex-M4 toolchain and QEMU (apt-get install {M4_PACKAGES})",
)
def test_cortex_m4_learns_as_the_host(exported, driver, tmp_path, mnist):
    x, y = mnist
    elf = build_m4(
        exported, tmp_path / "driver.elf", ("-DDRIVER_SAMPLES=100", "-DDRIVER_CLASSES=6")
    )
    script = _learn_script(tmp_path, x, y, [5], 100, x[:20])
    assert results(run_m4(elf, script, 3600)) == results(run([str(driver), str(script)]))


@pytest.mark.parametrize(
    "module",
    ["edgecl.codegen.c", "edgecl.codegen.c.bench", "edgecl.cli.export_c", "edgecl.kernels.rng"],
)
def test_imports_without_torch(module):
    import subprocess
    import sys

    code = f"from edgecl.testing import block_torch; block_torch(); import {module}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_export_refuses_a_bundle_without_a_budget(tmp_path):
    from edgecl.errors import ExportError

    manifest, arrays = read_bundle(BUNDLE)
    skip = ("format", "schema_version", "creator", "arrays")
    man = {k: v for k, v in manifest.items() if k not in skip}
    man["budget"] = {"bytes": None, "policy": "strict"}
    write_bundle(tmp_path / "b.ecl", man, arrays)
    with pytest.raises(ExportError, match="budget"):
        export_c(tmp_path / "b.ecl", tmp_path / "out", measure_stack=False)


@pytest.mark.parametrize(
    ("program", "head_bits", "gbm_weight"),
    [("every_op", 8, 0.5), ("dense_float", 16, 0.0), ("fused", 32, 0.2)],
)
def test_small_programs_every_op(tmp_path, program, head_bits, gbm_weight):
    from small_bundles import images, make_small_bundle

    bundle = make_small_bundle(
        tmp_path / "b.ecl", program, head_bits=head_bits, gbm_weight=gbm_weight
    )
    folder = _export(bundle, tmp_path / "c")
    drv = build_host(folder, tmp_path / "drv", extra=("-DDRIVER_SAMPLES=30", "-DDRIVER_CLASSES=3"))
    x, y = images(60, 2)
    new = write_images(tmp_path / "new.bin", x[y == 2][:20])
    probe = write_images(tmp_path / "probe.bin", x)
    lines = run([str(drv), str(_script(tmp_path, [
        f"embed {probe} {len(x)}", f"predict {probe} {len(x)}", f"learn c2 {new} 20 5",
        f"predict {probe} {len(x)}", f"save {tmp_path / 'state.bin'}",
    ]))])  # fmt: skip
    rt = Runtime.load(bundle)
    np.testing.assert_array_equal(embeddings(lines), rt.embed(x))
    pred = predictions(lines)
    np.testing.assert_array_equal(pred[: len(x)], _python_indices(rt, x))
    rt.learn_class("c2", x[y == 2][:20], seed=5, trace_memory=False)
    assert [line for line in lines if line.startswith("L ")] == [
        f"L 0 {rt.memory().stored_bytes} 3"
    ]
    d = rt.learner.memory.n_bits
    for cls in parse_state((tmp_path / "state.bin").read_bytes(), d, head_bits):
        np.testing.assert_array_equal(cls.words, _words_of(rt.learner.memory, cls.name, d))
    assert np.mean(pred[len(x) :] == _python_indices(rt, x)) >= 0.95
