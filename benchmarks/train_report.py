"""Write the ``## Training`` section of benchmarks/RESULTS.md from the JSON reports of
benchmarks/train_mnist.py runs (replaces only that section).

    python benchmarks/train_report.py runs/adam_e5.json runs/bayes_e5.json \
        runs/heavi04.json runs/thermo04.json
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def command(args: dict) -> str:
    parts = ["python benchmarks/train_mnist.py", f"--optimizer {args['optimizer']}"]
    if args.get("lr") is not None:
        parts.append(f"--lr {args['lr']:g}")
    parts.append(f"--epochs {args['epochs']}")
    if args.get("classes"):
        parts.append("--classes " + " ".join(str(c) for c in args["classes"]))
    if args.get("embedding") != "heaviside":
        parts.append(f"--embedding {args['embedding']} --levels {args['levels']}")
    if args.get("phase1_epochs") is not None:
        parts.append(f"--phase1-epochs {args['phase1_epochs']}")
    parts.append(f"--seed {args['seed']} --threads {args['threads']}")
    return " ".join(parts)


def cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "flags unknown"
    keep = [f for f in ("avx2", "fma", "avx512f", "avx512_vnni") if f in flags]
    return "flags: " + (", ".join(keep) if keep else "no AVX2")


def section(reports: list[dict], notes: str) -> str:
    m = reports[0]["machine"]
    lines = [
        "## Training",
        "",
        "Host-side training of the binary CNN (`edgecl.train.mnist_bnn`: float conv 64, binary "
        "conv 128 and 256, binary dense to D = 512 bits, float head) on the full MNIST IDX files "
        "(/work/shared/data/mnist, 60,000 train / 10,000 test), batch 100, cosine learning rate, "
        "seed 0, accuracy on the test set (restricted to the trained classes where given).",
        "",
        f"Machine: {m['cpu']} ({cpu_flags()}), {m['cores']} cores shared with other jobs, "
        f"{m['threads']} torch "
        f"thread per run; torch {m['torch']}, numpy {m['numpy']}, Python {m['python']}.",
        "",
        "| run | optimizer | classes | embedding | epochs | test accuracy | per-epoch test acc. "
        "| training time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        a, h = r["args"], r["history"]
        cls = "0-9" if len(r["classes"]) == 10 else ",".join(str(c) for c in r["classes"])
        emb = a["embedding"] + (f" (p={a['levels']})" if a["embedding"] == "thermometer" else "")
        per = " / ".join(f"{v:.4f}" for v in h["val_acc"])
        lines.append(
            f"| `{command(a)}` | {a['optimizer']} (lr {h['config']['lr']:g}) | {cls} | {emb} | "
            f"{a['epochs']} | **{r['test_accuracy']:.4f}** | {per} | "
            f"{r['train_seconds'] / 60:.0f} min |"
        )
    lines += ["", notes.strip(), ""]
    return "\n".join(lines)


def main() -> None:
    paths = [p for p in sys.argv[1:] if p.endswith(".json")]
    notes_file = next((p for p in sys.argv[1:] if p.endswith(".md")), None)
    reports = [json.loads(Path(p).read_text()) for p in paths]
    notes = Path(notes_file).read_text() if notes_file else ""
    new = section(reports, notes)
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    pat = re.compile(r"^## Training\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _: new + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    RESULTS.write_text(text)
    print(new)


if __name__ == "__main__":
    main()
