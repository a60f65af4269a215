"""The whole benchmark suite in one command (issue 7).

Runs, one after the other, each as its own process (so every part gets a fresh
interpreter and its own thread settings):

- ``kernels``: benchmarks/kernels.py, the kernel shapes vs numpy / torch / onnxruntime,
  1 and 2 threads;
- ``networks``: benchmarks/networks.py, MNIST BNN and VGG-small at batch 1, 1 and 2 threads;
- ``lce``: benchmarks/lce.py, LCE 0.16 and edgecl side by side (kernel shapes and both
  networks) in the LCE venv (``--lce-python``; skipped when it is not there);
- ``memory``: benchmarks/memory.py, the class memories' speed;
- ``device``: benchmarks/device.py, learn_class and (with a bundle) forward / cold start;
- ``onnx``: benchmarks/onnx_variants.py, the ONNX forward variants of a binary dense layer;
- ``continual``: benchmarks/continual.py, split-MNIST class memories (``nice -n 10``);
- ``binplay``: the same in BinPlay's protocol (5 tasks of 2 classes; F trained on 0, 1);
- ``training``: benchmarks/embeddings_table.py, Heaviside vs thermometer embeddings at
  D = 256, 512, 1024 (six Fs trained on classes 0-4, then the edgecl protocol with GBM;
  ``nice -n 10``, 30-45 min of one core); the section also shows BayesBiNN vs Adam+STE
  from their recorded figures (train_mnist.py, not re-run: too long).

Each part writes ``benchmarks/results/<part>.json`` (machine, versions, command inside);
the suite writes ``benchmarks/results/suite.json`` (commands, exit codes, wall times,
targets) and the ``## Suite`` section of ``benchmarks/RESULTS.md``.

    python benchmarks/suite.py                 # everything; trains the two Fs (an hour or more
                                               # on 2 loaded cores)
    python benchmarks/suite.py --checkpoint DIR/base.pt --seeds 0,1,2 --cache /tmp/ecl-cache
                                               # F of `edgecl demo -o DIR`: ~15 min + binplay
    python benchmarks/suite.py --quick         # a smoke run of every part (minutes)
    python benchmarks/suite.py --only networks,continual --checkpoint base.pt
    python benchmarks/suite.py --report-only   # rewrite RESULTS.md from the JSON files
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from machine import machine_info, machine_markdown  # noqa: E402

RESULTS = HERE / "results"
PARTS = (
    "kernels",
    "networks",
    "lce",
    "memory",
    "device",
    "onnx",
    "continual",
    "binplay",
    "training",
)
#: The venv with TensorFlow, larq and LCE 0.16 (benchmarks/lce.py's docstring installs it).
LCE_PYTHON = "/root/lce-venv/bin/python"
MNIST = "/work/shared/data/mnist"


def commands(args) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Per part: the command line and the environment additions."""
    py = [sys.executable]
    q = args.quick
    two = {"NUMBA_NUM_THREADS": "2"}
    one = {"NUMBA_NUM_THREADS": "1"}
    j = {p: str(RESULTS / f"{p}{'_quick' if q else ''}.json") for p in PARTS}
    cmds: dict[str, tuple[list[str], dict[str, str]]] = {
        "kernels": (
            py + [str(HERE / "kernels.py"), "--json", j["kernels"]] + (["--quick"] if q else []),
            two,
        ),
        "networks": (
            py + [str(HERE / "networks.py"), "--json", j["networks"]] + (["--quick"] if q else []),
            two,
        ),
        "memory": (
            py + [str(HERE / "memory.py"), "--json", j["memory"], "--repeats", "2" if q else "7"],
            one,
        ),
        "onnx": (
            py
            + [str(HERE / "onnx_variants.py"), "--json", j["onnx"], "--repeat", "5" if q else "50"],
            two,
        ),
    }
    dev = py + [str(HERE / "device.py"), "--json", j["device"], "--repeat", "3" if q else "20"]
    if args.bundle:
        dev += ["--bundle", args.bundle] + (["--only", "learn", "forward"] if q else [])
    else:
        dev += ["--only", "learn"]
    cmds["device"] = (dev, one)
    cont = ["nice", "-n", "10"] + py + [str(HERE / "continual.py"), "--json", j["continual"]]
    cont += ["--plot", str(RESULTS / f"continual_accuracy_vs_bytes{'_quick' if q else ''}.png")]
    cont += ["--seeds", args.seeds]
    if q:
        cont.append("--quick")
    if args.data_dir:
        cont += ["--data-dir", args.data_dir]
    if args.checkpoint:
        cont += ["--checkpoint", args.checkpoint]
    # the joint-training upper bound, one per seed (full MNIST: ~5 min an epoch on one core)
    cont += ["--joint-epochs", "1" if q else "2"]
    if args.cache:
        cont += ["--cache", args.cache]
    cmds["continual"] = (cont, one)
    bp = ["nice", "-n", "10"] + py + [str(HERE / "continual.py"), "--protocol", "binplay"]
    bp += ["--json", str(RESULTS / f"continual_binplay{'_quick' if q else ''}.json")]
    bp += [
        "--plot",
        str(RESULTS / f"continual_binplay_accuracy_vs_bytes{'_quick' if q else ''}.png"),
    ]
    bp += ["--seeds", args.seeds] + (["--quick"] if q else ["--epochs", "1"])
    if args.data_dir:
        bp += ["--data-dir", args.data_dir]
    if args.binplay_checkpoint:
        bp += ["--checkpoint", args.binplay_checkpoint]
    if args.cache:
        bp += ["--cache", args.cache]
    cmds["binplay"] = (bp, one)
    tr = ["nice", "-n", "10"] + py + [str(HERE / "embeddings_table.py")]
    tr += ["--json", str(RESULTS / f"embeddings_table{'_quick' if q else ''}.json")]
    tr += ["--quick", "--device-seeds", "0"] if q else []
    if args.data_dir:
        tr += ["--data-dir", args.data_dir]
    if args.cache:
        tr += ["--cache", str(Path(args.cache) / "embeddings_table")]
    cmds["training"] = (tr, one)
    lce = py + [str(HERE / "lce.py"), "all", "--lce-python", args.lce_python]
    lce += ["--json", j["lce"]] + (["--runs", "20"] if q else [])
    cmds["lce"] = (lce, two)
    return cmds


def _shell(cmd: list[str], env: dict[str, str]) -> str:
    root = Path.cwd()
    parts = [
        "python"
        if c == sys.executable
        else os.path.relpath(c, root)
        if c.startswith(str(root))
        else c
        for c in cmd
    ]
    return " ".join([f"{k}={v}" for k, v in env.items()] + parts)


def run_parts(args, parts: list[str]) -> list[dict]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    cmds = commands(args)
    log = []
    for p in parts:
        cmd, extra = cmds[p]
        env = {**os.environ, **extra}
        line = _shell(cmd, extra)
        print(f"== {p}: {line}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, check=False)
        wall = time.perf_counter() - t0
        print(f"== {p}: exit {proc.returncode} after {wall:.0f} s", flush=True)
        log.append({"part": p, "command": line, "rc": proc.returncode, "wall_s": wall})
    return log


def _load(name: str, quick: bool) -> dict | None:
    for n in [f"{name}_quick", name] if quick else [name]:
        f = RESULTS / f"{n}.json"
        if f.exists():
            try:
                return json.loads(f.read_text()) | {"_file": str(f.relative_to(HERE.parent))}
            except json.JSONDecodeError:
                return None
    return None


def targets(quick: bool) -> list[str]:
    """Issue 7's targets from the parts' JSON: met or not, and by how much."""
    lines = []
    net = _load("networks", quick)
    if net:
        for t in net["targets"]:
            if t["met"]:
                how = f"**met** with {t['margin']:.2f}x headroom"
            else:
                how = f"**NOT met**: {1 / t['margin']:.2f}x slower than needed"
            lines.append(
                f"- {t['target']}: {how} (single-thread median {t['measured_us']:.0f} µs; "
                f"best over 1/2 threads {t['best_over_threads_us']:.0f} µs) [{net['_file']}]"
            )
    lce = _load("lce", quick)
    for t in lce["targets"] if lce else []:
        if t["edgecl"] == "float in":  # the packed-input line is the kernel's own figure
            continue
        verdict = "**met**" if t["met"] else "**NOT met**"
        lines.append(
            f"- {t['shape']} >= {lce['target_speedup']:g}x LCE 0.16 measured here, one thread: "
            f"{verdict} (edgecl / LCE {t['speedup_median']:.2f}x median, "
            f"{t['speedup_p10']:.2f}x at the 10th percentile; LCE {t['lce_best']}) "
            f"[{lce['_file']}]"
        )
    ker = _load("kernels", quick)
    if ker and "rows" in ker:
        try:
            import kernels

            lines += [f"{s} [{ker['_file']}]" for s in kernels.target_lines(ker["rows"])]
        except Exception as exc:  # noqa: BLE001 - the kernel part's own helper
            lines.append(f"- kernels: targets not rendered ({exc})")
    return lines


def continual_md(quick: bool, name: str = "continual") -> list[str]:
    c = _load(name, quick)
    if not c:
        return ["(no continual results yet)"]
    host = c["host"][0]
    seeds = c["seeds"]
    m = c.get("bytes_to_match_latent_best", {})
    hosts = c["host"]
    per_seed_f = c.get("f_per_seed", "--checkpoint" not in c["command"]) and len(hosts) > 1
    if per_seed_f:
        accs = " / ".join(f"{h.get('base_accuracy', float('nan')):.4f}" for h in hosts)
        base = ", ".join(map(str, host.get("classes", ["?"])))
        mins = " / ".join(f"{h.get('train_s', float('nan')) / 60:.0f}" for h in hosts)
        f_text = (
            f"F: one per seed, {len(hosts)} trained (seed s trains F_s with seed s and runs the "
            "device side with seed s), each with the demo's host recipe "
            f"(`edgecl.train.recipes.train_base`: base task {host.get('base_task', '?')}, "
            f"{host.get('epochs', '?')} epoch(s) on classes {base} of "
            f"{host.get('dataset', '?')}; test accuracy on {base} {accs}; {mins} min of "
            "training each, one torch thread at "
            "nice 10)"
        )
    else:
        f_text = (
            f"F: {host.get('checkpoint', '?')} (base task {host.get('base_task', '?')}, "
            f"{host.get('epochs', '?')} epoch(s) on {host.get('dataset', '?')})"
        )
    partial = ""
    if not c.get("complete", True):
        partial = (
            f"**Partial run**: seeds {seeds} of the {c.get('seeds_asked')} asked finished "
            "(the time ran out); the seeds column says how many each row has. "
        )
    joint = c["rows"].get("joint (all 10 classes)")
    joint_text = ""
    if joint:
        joint_text = (
            "The joint row is the real upper bound: the same network (`edgecl.train.mnist_bnn`, "
            "the same channels and D) trained with plain supervised training "
            f"(`edgecl.train.fit`, Adam + STE, batch 100) on all 10 classes at once for "
            f"{joint.get('epochs', '?')} epoch(s), one per seed "
            f"({joint['seeds']} trained, {joint.get('train_s', float('nan')) / 60:.0f} min "
            "each); its final accuracy is its test accuracy over the 10 classes and its "
            "average incremental accuracy the same model's accuracy on the classes seen at "
            "each step. It has no class memory: it needs every training image at once. "
        )
    out = [
        f"Command: `{c['command']}` — seeds {seeds} ({len(seeds)} seed"
        f"{'s' if len(seeds) > 1 else ''}; ± is the std over seeds where there is more than "
        f"one). {partial}{f_text}; embedding "
        f"{host['embed_us_per_image']:.0f} µs per image on the device runtime (chunks of "
        "images, at nice 10 on the loaded machine), not in the learn times below. Learn "
        "times: one `Learner.learn` call (what `Runtime.learn_class` runs after embedding) "
        "on every training image of the class (about 6,000), measured at nice 10 beside other "
        "jobs: read them as upper bounds. Class memory bytes are for all 10 classes at the "
        "end (stored B adds the float32 head); the F-ceiling row's memory is every real "
        "embedding it trains on. "
        + (
            "Every seed has its own F, so the ± covers F's training (its weights, its base "
            "head, the exported thresholds) as well as the device side (EM fits, "
            "pseudo-exemplar draws, SGD order)"
            + (
                "; NCM and SLDA run once per F. "
                if c["rows"].get("slda", {}).get("seeds") == len(seeds)
                else "; NCM and SLDA ran on the first seed's F only. "
            )
            if per_seed_f
            else ""
        )
        + (
            "One F (the checkpoint) serves every seed: the ± covers the device side only "
            "(EM fits, pseudo-exemplar draws, SGD order), not F's training; NCM and SLDA are "
            "deterministic given F and run once. The checkpoint comes from "
            "`edgecl demo --data /work/shared/data/mnist -o DIR` (DIR/base.pt), the "
            "demo's host recipe. "
            if "--checkpoint" in c["command"] and len(seeds) > 1
            else ""
        )
        + joint_text
        + "Head settings: "
        + ", ".join(f"{k} {v}" for k, v in host["head_settings"].items())
        + ".",
        "",
        c["markdown"],
        "",
    ]
    if m.get("gbm"):
        out.append(
            f"GBM vs latent replay: latent replay's best final accuracy is "
            f"{m['latent_best_accuracy']:.4f} ({m['latent_best']}, {m['latent_best_bytes']:,} B "
            f"of class memory); GBM reaches it with {m['gbm']} ({m['gbm_accuracy']:.4f}) in "
            f"{m['gbm_bytes']:,} B: **{m['ratio']:.1f}x fewer bytes**."
        )
    elif m:
        out.append(
            f"GBM vs latent replay: latent replay's best final accuracy "
            f"{m['latent_best_accuracy']:.4f} ({m['latent_best']}, {m['latent_best_bytes']:,} B) "
            f"is **not reached** by any GBM row; GBM's best is {m['gbm_best']} "
            f"({m['gbm_best_accuracy']:.4f})."
        )
    for r in m.get("per_latent_row", []):
        if r["gbm"] is None:
            out.append(
                f"- {r['latent']} ({r['latent_accuracy']:.4f}, {r['latent_bytes']:,} B): "
                "no GBM row reaches it"
            )
        else:
            out.append(
                f"- {r['latent']} ({r['latent_accuracy']:.4f}, {r['latent_bytes']:,} B): "
                f"matched by {r['gbm']} ({r['gbm_accuracy']:.4f}, {r['gbm_bytes']:,} B), "
                + (
                    f"{r['ratio']:.1f}x fewer bytes"
                    if r["ratio"] >= 1
                    else f"{1 / r['ratio']:.2f}x the bytes (no GBM row is smaller)"
                )
            )
    png = name + "_accuracy_vs_bytes"
    png = png.replace("continual_continual", "continual") + (
        "_quick" if "_quick" in c["_file"] else ""
    )
    out += ["", f"Plot (accuracy vs class-memory bytes): `benchmarks/results/{png}.png`"]
    return out


def continual_not_done(quick: bool) -> list[str]:
    """The ``### Not done`` lines about the two split-MNIST tables, from their JSON."""
    c = _load("continual", quick) or {}
    rows, hosts = c.get("rows", {}), c.get("host", [])
    joint = rows.get("joint (all 10 classes)")
    lines = []
    if joint:
        lines.append(
            "- Joint training in BinPlay's protocol: not run (its upper row is the F ceiling); "
            "the edgecl table's joint row is the same bound on the same 10-class test set "
            f"(final accuracy {joint['final_accuracy']:.4f}, {joint.get('epochs', '?')} "
            "epoch(s) of training)."
        )
    else:
        lines.append(
            "- Joint training on all 10 classes (upper bound): not run; the upper rows are the "
            "F ceiling (a head trained on the real embeddings of every class seen)."
        )
    if c.get("f_per_seed") and len(hosts) > 1:
        ep = hosts[0].get("epochs", "?")
        lines.append(
            f"- The edgecl protocol trains one F per seed ({len(hosts)} Fs, {ep} epochs each); "
            "the BinPlay protocol trains one F per seed, for 1 epoch (the demo's default is 4)."
        )
    else:
        lines.append(
            "- The edgecl protocol's seeds share one F: its ± is the device side only. The "
            "BinPlay protocol trains one F per seed, for 1 epoch (the demo's default is 4)."
        )
    if c and not c.get("complete", True):
        lines.append(
            f"- The edgecl table's last run finished seeds {c['seeds']} of {c['seeds_asked']} "
            "(and the joint rows it has): the time ran out."
        )
    return lines


def _training_section_rows(path: Path = HERE / "RESULTS.md") -> list[list[str]]:
    """The full-MNIST (classes 0-9) rows of RESULTS.md's ``## Training`` table, as cells."""
    text = path.read_text() if path.exists() else ""
    m = re.search(r"^## Training\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    rows = []
    for line in (m.group(1) if m else "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `python benchmarks/train_mnist.py") and len(cells) >= 8:
            if cells[2] == "0-9":
                rows.append(cells)
    return rows


def optimizers_md() -> list[str]:
    """BayesBiNN vs Adam+STE on the full MNIST: from train_mnist.py's JSON reports in
    benchmarks/results/ (``train_mnist*.json``) if there are any, else from the figures of
    RESULTS.md's ``## Training`` section."""
    reports = []
    for f in sorted(RESULTS.glob("train_mnist*.json")):
        try:
            r = json.loads(f.read_text())
        except json.JSONDecodeError:
            continue
        if len(r.get("classes", [])) == 10 and "args" in r:
            reports.append(r | {"_file": str(f.relative_to(HERE.parent))})
    head = [
        "| optimizer | epochs | test accuracy (10 classes) | per-epoch test acc. | "
        "training time | command |",
        "|---|---:|---:|---|---:|---|",
    ]
    acc: dict[str, float] = {}
    if reports:
        lines = [
            "From the JSON reports of `benchmarks/train_mnist.py` (full MNIST, classes 0-9, "
            "Heaviside D = 512): " + ", ".join(f"`{r['_file']}`" for r in reports) + ".",
            "",
            *head,
        ]
        for r in reports:
            a, h = r["args"], r["history"]
            acc.setdefault(a["optimizer"], r["test_accuracy"])
            lines.append(
                f"| {a['optimizer']} (lr {h['config']['lr']:g}) | {a['epochs']} "
                f"| {r['test_accuracy']:.4f} | {' / '.join(f'{v:.4f}' for v in h['val_acc'])} "
                f"| {r['train_seconds'] / 60:.0f} min | see the JSON |"
            )
    else:
        rows = _training_section_rows()
        if not rows:
            return ["(no BayesBiNN / Adam+STE figures yet: see the `## Training` section)"]
        lines = [
            "Not re-run here (too long: see the training times); their JSON reports are not "
            "in benchmarks/results/ (`train_mnist*.json`), so these rows are read from the "
            "figures of the `## Training` section above (machine, settings and notes there):",
            "",
            *head,
        ]
        for c in rows:
            opt = c[1].split(" ")[0]
            a = c[5].strip("*")
            try:
                acc.setdefault(opt, float(a))
            except ValueError:
                pass
            lines.append(f"| {c[1]} | {c[4]} | {a} | {c[6]} | {c[7]} | {c[0]} |")
    if "adam" in acc and "bayesbinn" in acc:
        d = (acc["adam"] - acc["bayesbinn"]) * 100
        lines += [
            "",
            f"BayesBiNN is {abs(d):.2f} points {'under' if d > 0 else 'over'} Adam+STE "
            "(issue 3's target: within 0.5 points).",
        ]
    return lines


def training_md(quick: bool) -> list[str]:
    """The ``### Training-side tables`` subsection (issue 7 §3)."""
    t = _load("embeddings_table", quick)
    lines = [
        "#### Heaviside vs thermometer embeddings at several D (the GBM paper's Table 2 "
        "analogue, split-MNIST, edgecl protocol)",
        "",
    ]
    if t:
        s = t["settings"]
        n = sum(1 for c in t["configs"] if c["train"].get("cached"))
        reused = (
            f", {n} of its {len(t['configs'])} Fs reloaded from --cache: trained by an earlier "
            "invocation"
            if n
            else ""
        )
        lines += [
            f"Command: `{t['command']}` ({t['total_s'] / 60:.0f} min of wall time{reused}; JSON "
            f"`{t['_file']}`). "
            f"Each F is what `python benchmarks/train_mnist.py` trains with the arguments in "
            f"the JSON (`train_command`); thermometer: f = {s['features']} features, p = D / f "
            "levels (the paper's f·p = D); Heaviside: a binary dense layer straight to D bits. "
            "Classes 5-9 are then learned one `Learner.learn` call at a time on the device "
            "runtime's embeddings (benchmarks/continual.py's `run_method`).",
            "",
            t["markdown"],
            "",
            t["notes"],
            "",
            "The reading is in the `## Training-side tables` section above.",
            "",
        ]
    else:
        lines += ["(no results yet: `python benchmarks/embeddings_table.py`)", ""]
    lines += ["#### BayesBiNN vs Adam+STE (full MNIST, 10 classes)", "", *optimizers_md()]
    return lines


def section(args, log: list[dict] | None, machine: dict | None = None) -> str:
    """The ``## Suite`` section; ``machine``: the one the suite ran on (default: this one)."""
    q = args.quick
    net = _load("networks", q)
    lines = [
        "## Suite",
        "",
        "One command runs every benchmark and rewrites this section: "
        "`python benchmarks/suite.py` (`--quick` for a smoke run, `--only PART,...` for "
        f"some of {', '.join(PARTS)}; `--report-only` re-renders from the JSON). Each part "
        "also runs alone; its exact command is listed below and in its JSON "
        "(`benchmarks/results/<part>.json`, with the machine and library versions).",
        "",
        "### Machine",
        "",
        machine_markdown(machine or machine_info()),
        "- The machine is a shared VM with 2 cores and other jobs running: every timing "
        "part records the load average; the 2-thread figures compete with that load. This CPU "
        "is AMD Zen 5 with AVX-512 (VPOPCNTDQ), not the Zen 3 of the brief's LCE figures.",
        "",
    ]
    if log:
        lines += ["### Commands of the last suite run", ""]
        lines += ["| part | command | exit | wall s |", "|---|---|---:|---:|"]
        lines += [
            f"| {r['part']} | `{r['command']}` | {r['rc']} | {r['wall_s']:.0f} |" for r in log
        ]
        lines.append("")
    lines += ["### Targets", "", *targets(q), ""]
    if net:
        lines += [
            "### Whole networks at batch 1",
            "",
            f"Command: `{net['command']}`; {net['repeat']} timed runs per engine and thread "
            f"count in {net['rounds']} rounds interleaved with the other engines, after "
            f"{net['warmup']} warm-up runs; µs per image, median (10th percentile). Load "
            f"average (1, 5, 15 min) at the start {net['uptime_load_start']}, at the end "
            f"{net['uptime_load_end']}.",
            "",
            net["markdown"],
            "",
            "- edgecl logits: `Runtime.logits` on one raw image (F + head, Numba, torch-free); "
            "predict adds the argmax and class names. onnxruntime: the bundle's exported "
            "forward graph (float32 ±1 convolutions), graph optimisation on. torch: the "
            "training model in eval mode under `torch.inference_mode` (its binary layers "
            "binarise in float; it is a reference, not a deployment path).",
            "- 2 threads: the VM has 2 cores, shared with other jobs (the load average "
            "above), so a 2-thread parallel region waits for whichever thread lost its core: "
            "the 2-thread medians mostly measure that load. The targets are judged on the "
            "single-thread medians.",
            "- LCE: " + net["lce_note"] + ". The last column is therefore a cross-machine "
            "ratio; LCE measured on this machine, side by side, is in 'LCE 0.16 side by side' "
            "below (and judges the >= 3x LCE targets above).",
            "- Both networks are randomly initialised with BatchNorm statistics calibrated on "
            "256 samples (MNIST images / uniform random 32x32x3 pixels) and exported with "
            "verification (device bits equal to torch's); timing does not depend on "
            "the weights' values.",
            "",
        ]
    dev = _load("device", q)
    if dev and "forward" in dev:
        f = dev["forward"]
        lines += [
            "### Where the MNIST BNN's batch-1 time goes",
            "",
            f"From `{dev['_file']}` (benchmarks/device.py, a trained MNIST BNN bundle, one "
            f"thread): `Runtime.predict` p50 {f['predict_us']['p50']:.0f} µs; per step of the "
            "runtime's program (p50; fused steps named by their ops: the float first conv "
            "with its threshold and pool, each binary conv with its threshold and pool, the "
            "binary dense with its threshold, `edgecl.program.compile_program`):",
            "",
            *[
                f"- {k}: {v:.1f} µs"
                for k, v in f.get("steps_us_p50", f.get("layers_us_p50", {})).items()
            ],
            "",
        ]
    for n in net["networks"] if net else []:
        b = n.get("breakdown_1_thread_us")
        if b:
            lines += [
                f"{n['network']}, `Runtime.logits` at batch 1 split as it runs (one thread, "
                f"medians, µs; from `{net['_file']}`): "
                + "; ".join(
                    f"{k.replace('_', ' ')} {v:.0f}" for k, v in b.items() if isinstance(v, float)
                )
                + ".",
                "",
            ]
    lce = _load("lce", q)
    if lce:
        lines += [
            "### LCE 0.16 side by side",
            "",
            f"Command: `{lce['command']}` (from `python benchmarks/lce.py all --lce-python "
            f"{LCE_PYTHON}`: the two bundles exported in edgecl's venv, then LCE and edgecl "
            f"timed in one process of the LCE venv); {lce['runs']} timed runs per figure in "
            f"{lce['rounds']} interleaved rounds; load average at the start "
            f"{lce['load_average_start']}, at the end {lce['load_average_end']}. LCE's "
            "fastest of its four settings (use_indirect_bgemm, use_xnnpack on/off) per row; "
            "'float in' adds edgecl's packing of float input, which LCE's models do in-graph.",
            "",
            lce["markdown"],
            "",
        ]
    lines += ["### Split-MNIST class memories (edgecl protocol)", "", *continual_md(q), ""]
    lines += [
        "### Split-MNIST, BinPlay's protocol (5 tasks of 2 classes)",
        "",
        "Task 1 (classes 0, 1) on the host: F+G trained on it alone with the demo's recipe "
        "(`edgecl.train.recipes.train_base`, its default base task, but 1 epoch instead of the "
        "demo's 4 to fit the session's time: F is weaker than the demo's); "
        "tasks 2-5 on the device, one learn call per class, accuracy measured after each "
        "task (2 classes).",
        "",
        *continual_md(q, "continual_binplay"),
        "",
    ]
    lines += ["### Training-side tables", "", *training_md(q), ""]
    lines += [
        "### Not done",
        "",
        *(
            []
            if _load("lce", q)
            else [
                "- LCE / larq timings: no LCE venv here (`--lce-python`); ratios quote the brief."
            ]
        ),
        *continual_not_done(q),
        "- BayesBiNN vs Adam+STE is not re-run by the suite (full MNIST, tens of minutes "
        "per optimizer); "
        "the embeddings table trains one F per configuration (1 F seed by default). "
        "BinPlay/DGM themselves are in 'Generative rehearsal'.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path = HERE / "RESULTS.md") -> None:
    """Replace (or append) the ``## Suite`` section of RESULTS.md, nothing else."""
    old = path.read_text() if path.exists() else "# Results\n"
    pat = re.compile(r"^## Suite\n.*?(?=^## |\Z)", re.S | re.M)
    body = text.rstrip("\n") + "\n\n"
    new = pat.sub(lambda _m: body, old) if pat.search(old) else old.rstrip("\n") + "\n\n" + body
    path.write_text(new.rstrip("\n") + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a smoke run of every part")
    p.add_argument("--only", default=None, help=f"comma-separated parts of {PARTS}")
    p.add_argument("--skip", default="", help="comma-separated parts to leave out")
    p.add_argument("--report-only", action="store_true", help="only rewrite RESULTS.md")
    p.add_argument("--no-results-md", action="store_true", help="leave RESULTS.md alone")
    p.add_argument("--data-dir", default=MNIST if Path(MNIST).exists() else None)
    p.add_argument("--checkpoint", default=None, help="continual: base checkpoint (classes 0-4)")
    p.add_argument("--seeds", default="0", help="continual: seeds, e.g. 0,1,2")
    p.add_argument("--cache", default=None, help="continual: folder caching the embeddings")
    p.add_argument("--binplay-checkpoint", default=None, help="binplay: checkpoint of 0, 1")
    p.add_argument("--bundle", default=None, help="device: an MNIST bundle (forward, cold)")
    p.add_argument(
        "--lce-python",
        default=LCE_PYTHON,
        help=f"lce: the python of the venv with TensorFlow, larq and LCE (default {LCE_PYTHON})",
    )
    args = p.parse_args(argv)
    parts = list(PARTS) if args.only is None else [s for s in args.only.split(",") if s]
    bad = [s for s in parts + [s for s in args.skip.split(",") if s] if s not in PARTS]
    if bad:
        p.error(f"expected parts among {PARTS}, got {bad}")
    parts = [s for s in parts if s not in args.skip.split(",")]
    if "lce" in parts and not Path(args.lce_python).exists():
        print(f"lce: skipped, no {args.lce_python} (see benchmarks/lce.py to install it)")
        parts.remove("lce")
    log, machine = None, None
    if not args.report_only:
        log = run_parts(args, parts)
        f = RESULTS / ("suite_quick.json" if args.quick else "suite.json")
        if f.exists() and args.only is not None:  # keep the other parts' last runs
            ran = {r["part"] for r in log}
            old = [r for r in json.loads(f.read_text()).get("parts", []) if r["part"] not in ran]
            log = sorted(old + log, key=lambda r: PARTS.index(r["part"]))
        summary = {
            "command": " ".join(
                ["python", "benchmarks/suite.py", *(sys.argv[1:] if argv is None else argv)]
            ),
            "machine": machine_info(),
            "parts": log,
            "targets": targets(args.quick),
        }
        name = "suite_quick.json" if args.quick else "suite.json"
        (RESULTS / name).write_text(json.dumps(summary, indent=2) + "\n")
        machine = summary["machine"]
    else:
        f = RESULTS / ("suite_quick.json" if args.quick else "suite.json")
        if f.exists():
            summary = json.loads(f.read_text())
            log, machine = summary["parts"], summary.get("machine")
    if not args.no_results_md:
        write_section(section(args, log, machine))
        print("wrote the ## Suite section of benchmarks/RESULTS.md")
    return 0 if not log or all(r["rc"] == 0 for r in log) else 1


if __name__ == "__main__":
    sys.exit(main())
