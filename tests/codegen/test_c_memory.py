"""Where the C runtime keeps its bytes, and that none of it changes an answer: the input
buffer at the arena's end (``ecl_input_buffer``), the head's float32 rows in the pool's
unused tail during a commit (arena sized by ``ECL_ARENA_BYTES_FOR``, exactly), and a
Cortex-M4 app built without newlib's start-up, stdio or malloc (``make cortex-m4-bare``)."""

from __future__ import annotations

import re
import subprocess
from importlib import resources

import pytest
from c_build import M4_PACKAGES, build_host, have, results, run, write_images

from edgecl.bundle import read_bundle, write_bundle
from edgecl.codegen.c import export_c
from edgecl.data import load_idx_pair, sample_dir

pytestmark = pytest.mark.skipif(not have("gcc"), reason="needs gcc (apt-get install gcc)")

BUNDLE = sample_dir() / "compile.ecl"
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1")


@pytest.fixture(scope="module")
def mnist():
    return load_idx_pair(
        sample_dir() / "t10k-images-idx3-ubyte.gz", sample_dir() / "t10k-labels-idx1-ubyte.gz"
    )


def _bundle(tmp_path, budget):
    manifest, arrays = read_bundle(BUNDLE)
    man = {k: v for k, v in manifest.items()
           if k not in ("format", "schema_version", "creator", "arrays")}  # fmt: skip
    man["budget"] = {"bytes": budget, "policy": "adapt"}
    path = tmp_path / f"b{budget}.ecl"
    write_bundle(path, man, arrays)
    return path


def _script(tmp_path, x, y, classes, n, test):
    lines = []
    for seed, c in enumerate(classes):
        lines.append(f"learn {c} {write_images(tmp_path / f'c{c}.bin', x[y == c][:n])} {n} {seed}")
    lines += [f"predict {write_images(tmp_path / 'test.bin', test)} {len(test)}", "names"]
    path = tmp_path / "script.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("budget", [32768, 12000])
def test_input_buffer_and_pool_rows_change_no_answer(tmp_path, mnist, budget):
    """The same protocol with the images in the driver's own buffer and in the runtime's
    input buffer (ASan + UBSan, the arena exactly ECL_ARENA_BYTES_FOR): the same lines.
    At 32 KiB the head's rows mostly fit the pool's tail; at 12,000 B none do once the
    classes are in, and the arena holds them."""
    x, y = mnist
    folder = tmp_path / "c"
    export_c(_bundle(tmp_path, budget), folder, measure_stack=False)
    sizes = ("-DDRIVER_SAMPLES=20", "-DDRIVER_CLASSES=8")
    own = build_host(folder, tmp_path / "own", extra=(*SANITIZE, *sizes))
    buf = build_host(folder, tmp_path / "buf", extra=(*SANITIZE, *sizes, "-DDRIVER_INPUT_BUFFER"))
    script = _script(tmp_path, x, y, [5, 6, 7], 20, x[6000:6040])
    expected = results(run([str(own), str(script)]))
    assert [line for line in expected if line.startswith("L ")][-1].startswith("L 0 ")
    assert [line for line in expected if line.startswith("N ")][-3:] == ["N 5", "N 6", "N 7"]
    assert results(run([str(buf), str(script)])) == expected


def test_input_buffer_is_the_arena_end(tmp_path):
    """ecl_input_buffer: the last 8-aligned image bytes of the arena, NULL when the arena
    is smaller than an image."""
    folder = tmp_path / "c"
    export_c(BUNDLE, folder, measure_stack=False)
    app = tmp_path / "app.c"
    app.write_text(
        '#include <stdio.h>\n#include "edgecl.h"\n'
        "static uint64_t ctx_mem[ECL_CTX_BYTES / 8 + 1];\n"
        "static uint64_t arena[ECL_ARENA_BYTES(4) / 8 + 1];\n"
        "int main(void) {\n"
        "    ecl_ctx *c; size_t n = ECL_INPUT_H * ECL_INPUT_W * ECL_INPUT_C;\n"
        "    size_t in = (n + 7u) & ~(size_t)7u, end = (sizeof arena) & ~(size_t)7u;\n"
        "    if (ecl_init(ctx_mem, sizeof ctx_mem, arena, sizeof arena, &c)) return 1;\n"
        '    printf("%d\\n", ecl_input_buffer(c) == (uint8_t *)arena + end - in);\n'
        "    if (ecl_init(ctx_mem, sizeof ctx_mem, arena, n - 1, &c)) return 1;\n"
        '    printf("%d\\n", ecl_input_buffer(c) == NULL);\n'
        '    printf("%d\\n", ecl_input_buffer(NULL) == NULL);\n'
        "    return 0;\n}\n"
    )
    exe = tmp_path / "app"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{folder}", str(folder / "edgecl.c"),
                    str(folder / "edgecl_model.c"), str(app), "-o", str(exe), "-lm"],
                   check=True)  # fmt: skip
    assert run([str(exe)]) == ["1", "1", "1"]


def _answers(lines):
    """The bench app's lines without their timings (the second field)."""
    return [(ln.split()[0], *ln.split()[2:]) for ln in lines if " " in ln and "calib" not in ln]


@pytest.mark.skipif(
    not have("arm-none-eabi-gcc", "qemu-system-arm"),
    reason=f"needs the Cortex-M4 toolchain and QEMU (apt-get install {M4_PACKAGES})",
)
def test_cortex_m4_bare_app_learns_without_newlib_stdio(tmp_path, mnist):
    """The bench app built with `make cortex-m4-bare`: it reads images through
    board/semihost.h into the input buffer, learns a class and predicts as on the host;
    the image holds no stdio or malloc."""
    x, y = mnist
    folder = tmp_path / "c"
    export_c(BUNDLE, folder, measure_stack=False)
    app = resources.files("edgecl.codegen.c") / "runtime" / "bench" / "bench_app.c"
    flags = "-DBENCH_SAMPLES=20 -DBENCH_CLASSES=6"
    elf, host = folder / "bench.elf", folder / "bench_host"
    for target, out, extra in (("cortex-m4-bare", elf, " -DECL_BENCH_M4"), ("host", host, "")):
        subprocess.run(["make", "-C", str(folder), target, f"MAIN={app}", f"OUT={out}",
                        f"EXTRA={flags}{extra}"], check=True, capture_output=True)  # fmt: skip
    write_images(folder / "image.bin", x[:1])
    write_images(folder / "new.bin", x[y == 5][:20])
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                             check=True).stdout  # fmt: skip
    for name in ("fopen", "printf", "malloc", "_malloc_r", "__malloc_av_"):
        assert not re.search(rf" {name}$", symbols, re.M), name
    out = subprocess.run(
        ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
         "none", "-semihosting-config", "enable=on,target=native,arg=bench.elf,arg=image.bin,"
         "arg=1,arg=new.bin", "-kernel", str(elf)],
        capture_output=True, text=True, check=True, timeout=600, cwd=folder,
    ).stdout  # fmt: skip
    m4 = out.splitlines()
    on_host = run([str(host), str(folder / "image.bin"), "1", str(folder / "new.bin")])
    assert m4[-1] == "ok" and on_host[-1] == "ok"
    # the same class, the same stored bytes, the same predictions (timings aside)
    assert _answers(m4) == _answers(on_host)
    assert any(ln.startswith("commit ") and ln.split()[2] == "0" for ln in m4)
