"""``edgecl demo``: a data set's classes learned end to end (:mod:`edgecl.demo`; split-MNIST
by default): host training and export here, then the device phase in a new process with
torch blocked; ``--plot`` draws the report (matplotlib)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from edgecl.cli._common import (
    BASE_TASK_CHOICES,
    EXIT_OK,
    SIZE_HELP,
    UsageError,
    add_hidden_alias,
    add_seed,
    add_threads,
    check_targets,
    compile_notice,
    emit_json,
    parse_bytes,
    positive_int,
    require_extras,
)
from edgecl.cli.train import BASE_TASK_HELP, add_data_arguments, load_data_set
from edgecl.demo import DEFAULT_BUDGET, DemoConfig, run_demo

__all__ = ["add_demo", "cmd_demo", "plot_report"]


def add_demo(p: argparse.ArgumentParser) -> None:
    add_data_arguments(p)
    p.add_argument(
        "--base-classes",
        metavar="CLASSES",
        help="the classes trained on the host, by name or index: 0-4, 0,2,5 or cat,dog "
        "(default: the first half of the data set's classes, 0-4 of ten)",
    )
    p.add_argument(
        "--new-classes",
        metavar="CLASSES",
        help="the classes learned on the device, one learn_class each, in this order "
        "(default: every other class)",
    )
    p.add_argument(
        "--budget",
        type=parse_bytes,
        default=DEFAULT_BUDGET,
        help=f"budget of stored bytes (class memory + head rows), default 32KiB; {SIZE_HELP}",
    )
    p.add_argument(
        "--policy",
        choices=("strict", "adapt"),
        default="adapt",
        help="when a class does not fit the budget: adapt shrinks the class memory "
        "(default), strict refuses",
    )
    add_seed(p, "seed of the host training and of every learn_class")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("edgecl-demo"),
        help="folder for base.pt, base.ecl, model.ecl, report.json (default ./edgecl-demo)",
    )
    add_hidden_alias(p, "--out", "output", type=Path)
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier run")
    # `--json` alone prints the report as JSON (as every command); `--json FILE` writes it
    # to FILE and keeps the table; `--json-file FILE` is the same
    p.add_argument(
        "--json",
        nargs="?",
        const=True,
        default=False,
        metavar="FILE",
        help="print the report as JSON, or with FILE write it there (the table stays)",
    )
    p.add_argument(
        "--json-file", dest="json_file", type=Path, help="also write the JSON report here"
    )
    p.add_argument("--plot", type=Path, help="draw accuracy and bytes per step (needs matplotlib)")
    p.add_argument(
        "--base-task", choices=BASE_TASK_CHOICES, default="rotflipae", help=BASE_TASK_HELP
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="base training epochs (rotflipae: 4; rotation: 3 on the sample, 1 on a full set)",
    )
    p.add_argument(
        "--components", type=positive_int, default=6, help="GBM prototypes per class K (6)"
    )
    p.add_argument("--bits", type=positive_int, default=2, help="bits per prototype value q (2)")
    p.add_argument(
        "--gbm-weight",
        type=float,
        default=0.1,
        help="weight of the GBM likelihood in predictions (0.1; 0: the head alone)",
    )
    p.add_argument(
        "--head-bits",
        type=int,
        choices=(32, 16, 8),
        default=8,
        help="stored precision of the head's weights: 8 (default: int8 with a float32 scale "
        "per class, about a quarter of the float32 head's bytes), 16 (float16) or 32",
    )
    p.add_argument(
        "--allow-differing-samples",
        type=int,
        metavar="N",
        help="the export's verification passes with up to N samples whose embedding bits "
        "differ from torch's (float near-ties at a threshold of a float first layer, seen "
        "on RGB data; recorded in the bundle); default: 1%% of the 512 verified samples",
    )
    add_threads(p, "torch and kernel threads")
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="skip the host training: export this base checkpoint (of the base classes, "
        "edgecl train)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run (40 images per class, a tiny network)",
    )


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Draw a demo report: accuracy on the classes seen and the bytes after every step."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "--plot needs matplotlib (pip install matplotlib or edgecl[plot])"
        ) from exc
    steps = report["steps"]
    xs = [s["step"] for s in steps]
    fig, ax1 = plt.subplots(figsize=(6, 3.8))
    acc = [s["accuracy"] for s in steps]
    ax1.plot(xs, acc, "o-", color="tab:blue", label="accuracy (seen)")
    ax1.set_ylim(max(0.0, min(acc) - 0.1), 1.0)
    ax1.set_xticks(xs, [s["class"] for s in steps])
    ax1.set_xlabel("step (class learned)")
    ax1.set_ylabel("accuracy on classes seen", color="tab:blue")
    ax2 = ax1.twinx()
    for dx, key, color, alpha, label in (
        (-0.15, "class_memory_bytes", "tab:orange", 0.6, "class memory"),
        (0.15, "stored_bytes", "tab:gray", 0.5, "stored bytes"),
    ):
        values = [s[key] for s in steps]
        ax2.bar([x + dx for x in xs], values, width=0.3, color=color, alpha=alpha, label=label)
    if report.get("budget_bytes"):
        ax2.axhline(report["budget_bytes"], color="tab:red", ls="--", label="budget")
    ax2.set_ylabel("bytes")
    ax1.set_zorder(ax2.get_zorder() + 1)  # the accuracy line above the bars
    ax1.patch.set_visible(False)
    fig.legend(loc="lower center", ncol=4, fontsize=7, frameon=False)
    ax1.set_title(f"edgecl demo: final accuracy {report['final_accuracy']:.3f}")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cmd_demo(args: argparse.Namespace) -> int:
    """``edgecl demo``: host training + export, then the device phase in a torch-free process."""
    if isinstance(args.json, str):  # --json FILE
        if args.json_file is not None and Path(args.json) != args.json_file:
            raise UsageError(
                f"expected one report file, got --json {args.json} and --json-file {args.json_file}"
            )
        args.json_file, args.json = Path(args.json), False
    require_extras("demo", ["torch", "onnx"])
    if args.plot is not None:
        require_extras("demo --plot", ["matplotlib"], extra="plot")
    if args.checkpoint is not None and not args.checkpoint.is_file():
        raise UsageError(f"expected --checkpoint as a checkpoint file, got {args.checkpoint}")
    out = args.output
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file; expected a folder for the demo's files")
    written = [out / n for n in ("base.ecl", "model.ecl", "report.json")]
    if args.checkpoint is None:
        written.append(out / "base.pt")
    check_targets(written, args.overwrite, parents_made=True)
    check_targets([args.json_file, args.plot], args.overwrite)
    from edgecl.data import split_classes

    ds = load_data_set(args, quick=args.quick)
    try:
        split_classes(ds.class_names, args.base_classes, args.new_classes)
    except ValueError as exc:
        raise UsageError(f"--base-classes/--new-classes: {exc}") from exc
    kw: dict[str, Any] = dict(
        data_dir=None if args.data_dir is None else str(args.data_dir),
        image_size=args.image_size,
        base_classes=args.base_classes,
        new_classes=args.new_classes,
        backbone=args.backbone,
        pools=args.pools,
        flips=args.flips,
        budget_bytes=args.budget,
        policy=args.policy,
        seed=args.seed,
        out=str(out),
        json_path=None if args.json_file is None else str(args.json_file),
        base_task=args.base_task,
        components=args.components,
        bits=args.bits,
        gbm_weight=args.gbm_weight,
        head_bits=args.head_bits,
        threads=args.threads,
        checkpoint=None if args.checkpoint is None else str(args.checkpoint),
        allow_differing_samples=args.allow_differing_samples,
    )
    for name in ("channels", "epochs"):  # unset: keep the (quick) config's own
        if getattr(args, name) is not None:
            kw[name] = getattr(args, name)
    if args.quick and args.budget == DEFAULT_BUDGET:
        kw["budget_bytes"] = 16 * 1024
    try:
        cfg = DemoConfig.quick_config(**kw) if args.quick else DemoConfig(**kw)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    try:
        cfg.base_config().check(ds.image_shape)  # a network that cannot work: before any work
    except (TypeError, ValueError) as exc:
        h, w, c = ds.image_shape
        raise UsageError(f"for {h}x{w}x{c} inputs: {exc}") from exc
    log = (lambda m: None) if args.json else (lambda m: print(m, flush=True))
    compiled = compile_notice(args)
    report = run_demo(cfg, log=log, progress=not (args.json or args.quiet), dataset=ds)
    compiled()
    if args.plot is not None:
        plot_report(report, args.plot)
        report["plot"] = str(args.plot)
    if args.json:
        emit_json({"command": "demo", **{k: v for k, v in report.items() if k != "machine"}})
    return EXIT_OK
