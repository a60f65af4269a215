"""``edgecl demo``: split-MNIST end to end (:mod:`edgecl.demo`): host training and export
here, then the device phase in a new process with torch blocked."""

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
from edgecl.cli.train import BASE_TASK_HELP, DATA_SET_HELP
from edgecl.demo import DEFAULT_BUDGET, DemoConfig, run_demo

__all__ = ["add_demo", "cmd_demo"]


def add_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", dest="data_dir", type=Path, help=DATA_SET_HELP)
    add_hidden_alias(p, "--data-dir", "data_dir", type=Path)
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
    add_threads(p, "torch and kernel threads")
    p.add_argument(
        "--checkpoint",
        type=Path,
        help="skip the host training: export this base checkpoint (classes 0-4, edgecl train)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a seconds-long smoke run (40 images per class, a tiny network)",
    )


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
    if args.data_dir is not None and not args.data_dir.is_dir():
        raise UsageError(f"expected --data as an IDX data set folder, got {args.data_dir}")
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
    kw: dict[str, Any] = dict(
        data_dir=None if args.data_dir is None else str(args.data_dir),
        budget_bytes=args.budget,
        policy=args.policy,
        seed=args.seed,
        out=str(out),
        json_path=None if args.json_file is None else str(args.json_file),
        plot_path=None if args.plot is None else str(args.plot),
        base_task=args.base_task,
        epochs=args.epochs,
        components=args.components,
        bits=args.bits,
        gbm_weight=args.gbm_weight,
        head_bits=args.head_bits,
        threads=args.threads,
        checkpoint=None if args.checkpoint is None else str(args.checkpoint),
    )
    if args.quick and args.budget == DEFAULT_BUDGET:
        kw["budget_bytes"] = 16 * 1024
    try:
        cfg = DemoConfig.quick_config(**kw) if args.quick else DemoConfig(**kw)
        cfg.base_config()
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    log = (lambda m: None) if args.json else (lambda m: print(m, flush=True))
    compiled = compile_notice(args)
    report = run_demo(cfg, log=log, progress=not (args.json or args.quiet))
    compiled()
    if args.json:
        emit_json({"command": "demo", **{k: v for k, v in report.items() if k != "machine"}})
    return EXIT_OK
