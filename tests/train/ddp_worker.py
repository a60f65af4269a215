"""Worker for the 2-process DDP smoke test (run by torchrun from test_fit.py)."""

import json
import sys

import torch

from edgecl.data import load_mnist_sample
from edgecl.train import fit, mnist_bnn


def main() -> None:
    out, optimizer = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    x, y, _, _ = load_mnist_sample()
    torch.manual_seed(0)
    model = mnist_bnn(10, channels=(4, 6), n_bits=16)
    hist = fit(
        model, (x[:240], y[:240]), epochs=2, optimizer=optimizer, batch_size=40, progress=False
    )
    import torch.distributed as dist

    rank = dist.get_rank()
    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    bufs = torch.cat([b.detach().float().flatten() for b in model.buffers()])
    with open(f"{out}/rank{rank}.json", "w") as f:
        json.dump(
            {
                "world": dist.get_world_size(),
                "params": flat.tolist(),
                "buffers": bufs.tolist(),
                "history": hist.to_dict(),
            },
            f,
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
