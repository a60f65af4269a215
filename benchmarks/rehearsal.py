"""Generative rehearsal on split-MNIST: BinPlay and DGM beside GBM and latent replay.

One run = one method, one protocol, one seed; it writes a JSON file. ``--report`` reads
those files and writes the ``## Generative rehearsal`` section of benchmarks/RESULTS.md.

Protocols (full MNIST, 60,000 train / 10,000 test):
- ``binplay``: 5 tasks of 2 classes, {0,1}, {2,3}, ..., {8,9} (the BinPlay and DGM papers);
- ``edgecl``: classes 0-4 together, then 5, 6, 7, 8, 9 one at a time (the device's protocol).

Methods:
- ``binplay``: :class:`edgecl.train.baselines.binplay.BinPlay` on images, a small binary CNN
  (``mnist_bnn``) as the base network;
- ``dgmw`` / ``dgma``: :class:`edgecl.train.baselines.dgm.DGM`, the discriminator's classifier is
  the model;
- ``memories``: the device's terms. F (``mnist_bnn``, Heaviside D bits) is trained on the
  first task's classes and frozen; a float linear head is retrained at each step on the new
  class(es) plus replay from a class memory on F's bits (GBM, latent buffer: class-balanced
  batches, eq. 4 of the GBM paper), or from BinPlay's latent variant (a decoder that
  regenerates F's bits, soft targets from the frozen head), plus the all-real-embeddings
  ceiling and no replay.

Usage::

    python benchmarks/rehearsal.py run --method binplay --protocol binplay --seed 0 \\
        --out /tmp/rehearsal
    python benchmarks/rehearsal.py report --out /tmp/rehearsal
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info, machine_markdown  # noqa: E402

from edgecl.data import load_idx_dataset  # noqa: E402
from edgecl.kernels.bits import pack_bits, unpack_bits  # noqa: E402
from edgecl.memory import (  # noqa: E402
    GBMConfig,
    GBMMemory,
    LatentBuffer,
    LatentBufferConfig,
    balanced_batches,
)
from edgecl.metrics import (  # noqa: E402
    accuracy_matrix,
    average_incremental_accuracy,
    final_accuracy,
    incremental_accuracies,
)
from edgecl.train import fit, mnist_bnn  # noqa: E402
from edgecl.train.baselines.binplay import (  # noqa: E402
    BinPlay,
    BinPlayConfig,
    BinPlayMemory,
    ClassifierConfig,
    CodeSpec,
    ConvAutoencoder,
    VectorAutoencoder,
)
from edgecl.train.baselines.dgm import DGM, ACDiscriminator, DGMConfig, MaskedGenerator  # noqa: E402

PROTOCOLS = {
    "binplay": [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]],
    "edgecl": [[0, 1, 2, 3, 4], [5], [6], [7], [8], [9]],
}
SECTION = "## Generative rehearsal"

# Sizes (CPU). The papers' sizes are in the report next to these.
BINPLAY_AE = dict(enc_channels=(16, 32, 64), dec_hidden=256, dec_channels=(32, 32, 32, 32))
BINPLAY_SPEC = dict(index_bits=16, n_sub=12, batch_bits=8)  # 200-bit latent, as the paper
BNN = dict(channels=(16, 32, 64), n_bits=256)
F_NET = dict(channels=(32, 64, 128), n_bits=512)


def _log(*a) -> None:
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def _task_data(x, y, classes):
    keep = np.isin(y, classes)
    return x[keep], y[keep]


def _summary(yte, preds, steps) -> dict:
    acc = accuracy_matrix(yte, preds, steps)
    w = [int(np.isin(yte, s).sum()) for s in steps]
    return {
        "final_accuracy": round(final_accuracy(acc, w), 4),
        "average_incremental_accuracy": round(average_incremental_accuracy(acc, w), 4),
        "accuracy_per_step": [round(float(a), 4) for a in incremental_accuracies(acc, w)],
        "accuracy_matrix": [[None if np.isnan(v) else round(float(v), 4) for v in r] for r in acc],
    }


def run_binplay(args, data, steps) -> dict:
    xtr, ytr, xte, yte = data
    torch.manual_seed(args.seed)
    spec = CodeSpec(**BINPLAY_SPEC)
    ae = ConvAutoencoder(spec.n_bits, **BINPLAY_AE)
    cfg = BinPlayConfig(
        warmup_epochs=args.ae_warmup,
        assign_epochs=args.ae_assign,
        decoder_epochs=args.ae_decoder,
        batch_size=64,
        lr=2e-3,
        replay_ratio=args.ae_replay_ratio,
    )
    mem = BinPlayMemory(ae, spec, cfg)
    model = mnist_bnn(10, **BNN)
    bp = BinPlay(
        model,
        mem,
        n_outputs=10,
        classifier=ClassifierConfig(
            epochs=args.cls_epochs,
            batch_size=64,
            lr=2e-3,
            process_new=not args.raw_new,
            soft_targets=not args.hard_targets,
        ),
    )
    preds, per_step = [], []
    for t, cls in enumerate(steps):
        t0 = time.perf_counter()
        rep = bp.learn_task(*_task_data(xtr, ytr, cls), seed=args.seed * 100 + t)
        preds.append(bp.predict(xte))
        seen = np.isin(yte, sum(steps[: t + 1], []))
        acc_t = float(np.mean(preds[-1][seen] == yte[seen]))
        per_step.append(
            {
                "classes": cls,
                "seconds": round(time.perf_counter() - t0, 1),
                "autoencoder": rep.autoencoder,
                "classifier_loss": rep.classifier_loss,
            }
        )
        _log(f"binplay step {t} {cls}: acc {acc_t:.4f} ({per_step[-1]['seconds']} s)")
    # reconstruction quality of the stored batches: mean abs pixel error of d(c(i)) vs x_i
    return {
        **_summary(yte, preds, steps),
        "stored_bytes": mem.nbytes,
        "decoder_bytes": mem.decoder_nbytes,
        "counts_bytes": 4 * len(mem.counts),
        "encoder_bytes": mem.encoder_nbytes,
        "base_network_bytes": sum(p.numel() * 4 for p in model.parameters()),
        "steps": per_step,
        "sizes": {"autoencoder": BINPLAY_AE, "code": BINPLAY_SPEC, "base_network": BNN},
    }


def run_dgm(args, data, steps, mode) -> dict:
    xtr, ytr, xte, yte = data
    torch.manual_seed(args.seed)
    g = MaskedGenerator(10, noise_dim=32, hidden=tuple(args.g_hidden), mode=mode)
    d = ACDiscriminator(10, channels=(32, 64), hidden=256)
    cfg = DGMConfig(
        epochs=args.gan_epochs,
        batch_size=64,
        lr=args.gan_lr,
        mask_lr=args.mask_lr,
        lambda_ru=args.lambda_ru,
        s_max=400.0,
    )
    dgm = DGM(g, d, config=cfg)
    preds, per_step = [], []
    init_params = g.n_parameters()
    for t, cls in enumerate(steps):
        t0 = time.perf_counter()
        rep = dgm.learn_task(*_task_data(xtr, ytr, cls), seed=args.seed * 100 + t)
        preds.append(dgm.predict(xte))
        seen = np.isin(yte, sum(steps[: t + 1], []))
        acc_t = float(np.mean(preds[-1][seen] == yte[seen]))
        per_step.append(
            {
                "classes": cls,
                "seconds": round(time.perf_counter() - t0, 1),
                "growth": rep.growth,
                "reserved_new": rep.reserved_new,
                "free_before": rep.free_before,
                "free_after": rep.free_after,
                "d_loss": [round(v, 4) for v in rep.d_loss],
                "g_loss": [round(v, 4) for v in rep.g_loss],
                "reg": [round(v, 4) for v in rep.reg],
                "generator_parameters": g.n_parameters(),
            }
        )
        _log(
            f"dgm-{mode} step {t} {cls}: acc {acc_t:.4f} growth {rep.growth} "
            f"({per_step[-1]['seconds']} s)"
        )
    nb = g.stored_nbytes()
    return {
        **_summary(yte, preds, steps),
        "stored_bytes": nb["total"],
        "generator_weight_bytes": nb["weights"],
        "mask_bytes": nb["masks"],
        "generator_parameters_initial": init_params,
        "generator_parameters_final": g.n_parameters(),
        "hidden_sizes_final": g.hidden_sizes(),
        "discriminator_bytes": sum(p.numel() * 4 for p in d.parameters()),
        "steps": per_step,
        "sizes": {
            "generator_hidden_initial": list(args.g_hidden),
            "noise_dim": 32,
            "discriminator": {"channels": [32, 64], "hidden": 256},
            "epochs_per_task": args.gan_epochs,
        },
    }


def _train_head(head, batches, n_seen, lr):
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for xb, yb in batches:
        loss = torch.nn.functional.cross_entropy(head(xb)[:, :n_seen], yb)
        opt.zero_grad()
        loss.backward()
        opt.step()


def _real_batches(z, y, batch, epochs, gen):
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), batch):
            idx = perm[i : i + batch]
            yield z[idx], y[idx]


def run_memories(args, data, steps) -> dict:
    xtr, ytr, xte, yte = data
    torch.manual_seed(args.seed)
    base = steps[0]
    f_net = mnist_bnn(len(base), **F_NET)
    t0 = time.perf_counter()
    fit(
        f_net,
        (xtr, ytr),
        classes=base,
        epochs=args.f_epochs,
        lr=2e-3,
        batch_size=100,
        seed=args.seed,
        progress=False,
    )
    f_seconds = time.perf_counter() - t0
    _log(f"F trained on {base} in {f_seconds:.0f} s")
    f_net.eval()

    @torch.no_grad()
    def embed(x):
        from edgecl.train import images_to_tensor

        xt = images_to_tensor(x)
        return torch.cat([f_net.embed(xt[i : i + 1000]) for i in range(0, len(xt), 1000)])

    ztr = embed(xtr)
    zte = embed(xte)
    d = ztr.shape[1]
    wtr = pack_bits(ztr.numpy().astype(np.uint8))
    out: dict = {"f_seconds": round(f_seconds, 1), "n_bits": d, "f_sizes": F_NET}
    batch, lr, head_epochs = 64, 1e-2, args.head_epochs
    fast = dict(n_init=5, n_iter=3, n_max=10)
    makers = {
        "GBM K=8 q=8": lambda: GBMMemory(d, GBMConfig(components=8, bits=8, **fast)),
        "GBM K=1 q=8": lambda: GBMMemory(d, GBMConfig(components=1, bits=8, **fast)),
        "latent buffer E=20": lambda: LatentBuffer(d, LatentBufferConfig(per_class=20)),
        "latent buffer E=200": lambda: LatentBuffer(d, LatentBufferConfig(per_class=200)),
        "all real embeddings (ceiling)": lambda: LatentBuffer(
            d, LatentBufferConfig(per_class=7000)
        ),
        "no replay": lambda: None,
    }
    for name, make in makers.items():
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(args.seed)
        rng = np.random.default_rng(args.seed)
        mem = make()
        head = torch.nn.Linear(d, 10)
        order: list[int] = []
        preds = []
        for t, cls in enumerate(steps):
            keep = np.isin(ytr, cls)
            new_order = order + list(cls)
            idx = {str(c): i for i, c in enumerate(new_order)}
            if t == 0 or mem is None:
                yy = torch.tensor([idx[str(c)] for c in ytr[keep]])
                _train_head(
                    head, _real_batches(ztr[keep], yy, batch, head_epochs, gen), len(new_order), lr
                )
            else:
                new = {str(c): wtr[ytr == c] for c in cls}
                bb = balanced_batches(
                    mem, new, batch_size=batch, epochs=head_epochs, class_index=idx, seed=rng
                )
                conv = (
                    (torch.from_numpy(unpack_bits(w, d).astype(np.float32)), torch.from_numpy(lab))
                    for w, lab in bb
                )
                _train_head(head, conv, len(new_order), lr)
            if mem is not None:
                for c in cls:
                    mem.fit_class(str(c), wtr[ytr == c], seed=rng)
            order = new_order
            with torch.no_grad():
                p = head(zte)[:, : len(order)].argmax(1).numpy()
            preds.append(np.asarray(order)[p])
        out[name] = {
            **_summary(yte, preds, steps),
            "stored_bytes": 0 if mem is None else mem.nbytes,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        _log(name, out[name]["final_accuracy"], out[name]["stored_bytes"])
    # BinPlay's latent variant: a decoder regenerates F's bits from index codes
    for hidden in args.latent_hidden:
        t0 = time.perf_counter()
        torch.manual_seed(args.seed)
        spec = CodeSpec(index_bits=16, n_sub=4, batch_bits=4)
        mem = BinPlayMemory(
            VectorAutoencoder(d, spec.n_bits, hidden=(hidden,)),
            spec,
            BinPlayConfig(
                warmup_epochs=1,
                assign_epochs=1,
                decoder_epochs=args.latent_decoder_epochs,
                batch_size=64,
                lr=2e-3,
            ),
        )
        head = torch.nn.Linear(d, 10)
        bp = BinPlay(
            head,
            mem,
            n_outputs=10,
            inputs="vectors",
            input_scale=1.0,
            binarize_replay=True,
            classifier=ClassifierConfig(epochs=head_epochs, batch_size=batch, lr=lr),
        )
        preds = []
        for t, cls in enumerate(steps):
            keep = np.isin(ytr, cls)
            bp.learn_task(ztr[keep], ytr[keep], seed=args.seed * 100 + t)
            with torch.no_grad():
                preds.append(bp.predict(zte))
        name = f"BinPlay latent (decoder hidden {hidden})"
        out[name] = {
            **_summary(yte, preds, steps),
            "stored_bytes": mem.nbytes,
            "decoder_bytes": mem.decoder_nbytes,
            "code_bits": spec.n_bits,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        _log(name, out[name]["final_accuracy"], out[name]["stored_bytes"])
    return out


def _runner() -> str:
    """How this process was started, as a shell prefix: its CPU affinity and niceness."""
    cpus = sorted(os.sched_getaffinity(0))
    prefix = [] if len(cpus) == os.cpu_count() else ["taskset -c " + ",".join(map(str, cpus))]
    nice = os.nice(0)
    if nice:
        prefix.append(f"nice -n {nice}")
    return " ".join(prefix)


def cmd_run(args) -> None:
    if args.tag and not args.tag.replace("-", "").replace("_", "").isalnum():
        raise SystemExit(f"--tag must be letters, digits, '-' or '_', got {args.tag!r}")
    settings = {k: v for k, v in vars(args).items() if k != "func"}
    tag = f"-{args.tag}" if args.tag else ""
    path = Path(args.out) / f"{args.method}-{args.protocol}{tag}-seed{args.seed}.json"
    if path.exists():  # refuse before training rather than overwrite another setting's run
        old = json.loads(path.read_text())["settings"]
        shared = (set(old) & set(settings)) - {"out"}  # older files lack later options
        if any(old[k] != settings[k] for k in shared):
            raise SystemExit(
                f"{path} holds a run with other settings; give this one a --tag (it has {old})"
            )
    torch.set_num_threads(1)
    steps = PROTOCOLS[args.protocol]
    data = load_idx_dataset(args.mnist)
    if args.limit_per_class:  # smoke runs only; recorded runs use every sample
        xtr, ytr, xte, yte = data
        keep = np.concatenate([np.flatnonzero(ytr == c)[: args.limit_per_class] for c in range(10)])
        keep.sort()
        data = (xtr[keep], ytr[keep], xte[:2000], yte[:2000])
    info = machine_info()
    t0 = time.perf_counter()
    _log(f"run {args.method} on {args.protocol}, seed {args.seed}")
    if args.method == "binplay":
        res = run_binplay(args, data, steps)
    elif args.method in ("dgmw", "dgma"):
        res = run_dgm(args, data, steps, "weights" if args.method == "dgmw" else "activations")
    else:
        res = run_memories(args, data, steps)
    res = {
        "method": args.method,
        "protocol": args.protocol,
        "seed": args.seed,
        "command": " ".join(sys.argv),
        "settings": settings,
        "seconds": round(time.perf_counter() - t0, 1),
        "runner": _runner(),
        "machine": info,
        "result": res,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(res, indent=1))
    _log(f"wrote {path} ({res['seconds']} s)")


def _fmt_bytes(n: int) -> str:
    return f"{n:,} ({n / 1024:.1f} KiB)"


PAPER = {
    "binplay": "BinPlay paper Table 2 (split-MNIST, 5 tasks of 2 classes): BinPlay 97.2 ± 0.6; "
    "DGM paper Table 1 (MNIST, 10 single-class tasks): DGMw A5 98.75, A10 96.46; "
    "DGMa A5 99.17, A10 97.92",
    "edgecl": "no paper figure for this protocol; DESIGN.md's reference run (F: float conv 64, "
    "binary 128/256, D = 512, 3 epochs): GBM K=8 q=8 0.904, latent buffer E=20 0.827, "
    "all real embeddings 0.933",
}
METHOD_NAMES = {
    "binplay": "BinPlay (images)",
    "dgmw": "DGMw",
    "dgma": "DGMa",
}
STORED_NOTE = {
    "binplay": "decoder float32 + one uint32 count per batch",
    "dgmw": "generator float32 + one bit per weight per task (packed)",
    "dgma": "generator float32 + one bit per unit per task (packed)",
}


def _fmt_bytes_range(values: list[int]) -> str:
    """One byte count, or the smallest and largest over the seeds."""
    if len(values) == 1:
        return _fmt_bytes(values[0])
    return f"{values[0]:,} - {values[-1]:,} ({values[0] / 1024:.1f}-{values[-1] / 1024:.1f} KiB)"


def _sd(values: list[float]) -> str:
    """`` ± s`` with the sample standard deviation (n - 1), empty for one value."""
    return f" ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else ""


def _rows(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    """(protocol, row name) -> per-seed result dicts."""
    rows: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        if r["method"] == "memories":
            for name, res in r["result"].items():
                if isinstance(res, dict) and "final_accuracy" in res:
                    rows.setdefault((r["protocol"], "F + head, " + name), []).append(
                        {**res, "seed": r["seed"]}
                    )
        else:
            rows.setdefault((r["protocol"], METHOD_NAMES[r["method"]] + _variant(r)), []).append(
                {**r["result"], "seed": r["seed"], "method": r["method"]}
            )
    return rows


def _variant(run: dict) -> str:
    """The settings of a run that differ from the script's defaults, as a row-name suffix."""
    st = run["settings"]
    if run["method"] == "binplay":
        parts = [f"{st['ae_warmup']}+{st['ae_assign']}+{st['ae_decoder']} AE epochs"]
        if st.get("ae_replay_ratio") is not None:
            parts.append(f"decoder replay capped at {st['ae_replay_ratio']:g}:1")
        else:
            parts.append("decoder replay N_prev/N_new")
        if st.get("cls_epochs", 1) != 1:
            parts.append(f"{st['cls_epochs']} base-network epochs")
        if st.get("raw_new"):
            parts.append("new samples raw")
        if st.get("hard_targets"):
            parts.append("hard targets")
        return " (" + ", ".join(parts) + ")"
    if run["method"] in ("dgmw", "dgma"):
        return f" ({st['gan_epochs']} epochs per task)"
    return ""


def section(runs: list[dict], notes: str) -> str:
    rows = _rows(runs)
    lines = [SECTION, ""]
    lines.append("Commands (one JSON file per run; the section is written by `report`):")
    lines.append("")
    lines.append("```")
    for r in sorted(runs, key=lambda r: (r["protocol"], r["method"], r["command"], r["seed"])):
        cmd = r["command"].replace(str(Path(__file__).resolve()), "benchmarks/rehearsal.py")
        prefix = (r.get("runner", "") + " ").lstrip()
        lines.append(f"{prefix}python {cmd}   # {r['seconds'] / 60:.1f} min")
    lines.append("python benchmarks/rehearsal.py report  # the reading: results/rehearsal/notes.md")
    lines.append("```")
    lines.append("")
    loads = [(r["machine"].get("load_average_1_5_15") or [float("nan")])[0] for r in runs]
    lines.append(
        f"Machine (2 cores; one torch thread per run, runs pinned one per core where the "
        f"command says `taskset`; 1-min load average at the start of the runs "
        f"{np.nanmin(loads):.1f}-{np.nanmax(loads):.1f}), as recorded in the first run file:"
    )
    lines.append("")
    lines.append(machine_markdown(runs[0]["machine"]))
    lines.append("")
    for proto, title in (
        ("binplay", "split-MNIST, BinPlay protocol: {0,1}, {2,3}, {4,5}, {6,7}, {8,9}"),
        ("edgecl", "split-MNIST, edgecl protocol: 0-4, then 5, 6, 7, 8, 9 one at a time"),
    ):
        keys = [k for k in rows if k[0] == proto]
        if not keys:
            continue
        lines += [f"### {title}", "", f"Paper anchors: {PAPER[proto]}.", ""]
        lines.append(
            "| method | seeds | final accuracy mean ± std (per seed) | average incremental "
            "accuracy mean ± std | accuracy after each step (first seed) "
            "| stored bytes (over seeds) | what is stored |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        for k in sorted(keys, key=lambda k: -np.mean([r["final_accuracy"] for r in rows[k]])):
            rs = sorted(rows[k], key=lambda r: r["seed"])
            fa = [r["final_accuracy"] for r in rs]
            aia = [r["average_incremental_accuracy"] for r in rs]
            nbs = sorted({r["stored_bytes"] for r in rs})
            what = STORED_NOTE.get(rs[0].get("method", ""), "")
            if not what:
                if "BinPlay latent" in k[1]:
                    what = f"decoder float32 ({rs[0]['decoder_bytes']:,} B) + counts"
                elif "GBM" in k[1]:
                    what = "q-bit prototypes + pi + counts (class memory)"
                elif "buffer" in k[1] or "ceiling" in k[1]:
                    what = "packed D-bit exemplars + counts (class memory)"
                else:
                    what = "nothing"
            per_seed = ", ".join(f"{v:.3f}" for v in fa)
            steps = " / ".join(f"{v:.3f}" for v in rs[0]["accuracy_per_step"])
            lines.append(
                f"| {k[1]} | {len(rs)} | **{np.mean(fa):.3f}{_sd(fa)}** ({per_seed}) "
                f"| {np.mean(aia):.3f}{_sd(aia)} "
                f"| {steps} | {_fmt_bytes_range(nbs)} | {what} |"
            )
        lines.append("")
        for k in sorted(keys):
            r0 = sorted(rows[k], key=lambda r: r["seed"])[0]
            if r0.get("method") == "binplay":
                lines.append(
                    f"{k[1]}: decoder {r0['decoder_bytes']:,}, counts "
                    f"{r0['counts_bytes']}, encoder (kept to learn later batches, not counted, "
                    f"as the paper) {r0['encoder_bytes']:,}, base network "
                    f"{r0['base_network_bytes']:,}."
                )
            elif r0.get("method") in ("dgmw", "dgma"):
                lines.append(
                    f"{k[1]}, generator: "
                    f"{r0['generator_parameters_initial']:,} -> "
                    f"{r0['generator_parameters_final']:,} parameters, hidden layers "
                    f"{r0['sizes']['generator_hidden_initial']} -> {r0['hidden_sizes_final']}; "
                    f"weights {r0['generator_weight_bytes']:,} B + masks {r0['mask_bytes']:,} B; "
                    f"units added per task {[s['growth'] for s in r0['steps']]}."
                )
        lines.append("")
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def write_section(results: Path, text: str) -> None:
    """Replace (or append) this section of RESULTS.md, leaving the others untouched."""
    old = results.read_text() if results.exists() else "# Benchmark results\n"
    start = old.find(SECTION + "\n")
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + ("" if nxt < 0 else "\n" + old[nxt + 1 :])
    results.write_text(new.rstrip("\n") + "\n")


def cmd_report(args) -> None:
    runs = [json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*.json"))]
    if not runs:
        raise SystemExit(f"no run files in {args.out}")
    default_notes = Path(args.out) / "notes.md"
    if args.notes:
        notes = Path(args.notes).read_text()
    elif default_notes.exists():
        notes = default_notes.read_text()
    else:
        notes = ""
    text = section(runs, notes)
    if args.dry_run:
        print(text)
    else:
        write_section(Path(args.results), text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--method", choices=["binplay", "dgmw", "dgma", "memories"], required=True)
    r.add_argument("--protocol", choices=sorted(PROTOCOLS), required=True)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--mnist", default="/work/shared/data/mnist")
    r.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "rehearsal"))
    r.add_argument("--limit-per-class", type=int, default=0)
    r.add_argument("--ae-warmup", type=int, default=1)
    r.add_argument("--ae-assign", type=int, default=1)
    r.add_argument("--ae-decoder", type=int, default=2)
    r.add_argument("--cls-epochs", type=int, default=1)
    r.add_argument(
        "--raw-new",
        action="store_true",
        help="train the base network on the new samples as they come, not passed through "
        "the autoencoder (BinPlay Table 1 ablation)",
    )
    r.add_argument(
        "--hard-targets",
        action="store_true",
        help="label replayed samples with the frozen copy's argmax instead of its soft "
        "outputs (BinPlay Table 1 ablation)",
    )
    r.add_argument(
        "--tag",
        default="",
        help="suffix of the run file's name, for runs whose settings differ from the defaults",
    )
    r.add_argument(
        "--ae-replay-ratio",
        type=float,
        default=None,
        help="past pairs per new pair for the decoder (default: N_prev/N_new, §3.1)",
    )
    r.add_argument("--gan-epochs", type=int, default=5)
    r.add_argument("--gan-lr", type=float, default=2e-4)
    r.add_argument("--mask-lr", type=float, default=1e-3)
    r.add_argument("--lambda-ru", type=float, default=0.1)
    r.add_argument("--g-hidden", type=int, nargs="+", default=[128, 256])
    r.add_argument("--f-epochs", type=int, default=2)
    r.add_argument("--head-epochs", type=int, default=1)
    r.add_argument("--latent-hidden", type=int, nargs="*", default=[256])
    r.add_argument("--latent-decoder-epochs", type=int, default=3)
    r.set_defaults(func=cmd_run)
    p = sub.add_parser("report")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "rehearsal"))
    p.add_argument("--results", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    p.add_argument(
        "--notes",
        default="",
        help="markdown appended to the section (default: notes.md in --out, if there)",
    )
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_report)
    args = ap.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
