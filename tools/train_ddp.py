"""Data-parallel training of a compiled network with DistributedDataParallel (DDP).

    torchrun --standalone --nproc_per_node=2 tools/train_ddp.py --spec resnet18 --input-size 32 --steps 20
    torchrun --nproc_per_node=4 tools/train_ddp.py --spec specs/resnet50.yaml --batch-size 64 --steps 100
    python tools/train_ddp.py --spec lenet5              # no torchrun: one process, world size 1

A compiled archspec model is a plain `nn.Module`, so scaling out needs nothing from archspec:
this script is the usual DDP loop, kept small enough to read. Every rank builds the same spec with
the same seed; DDP broadcasts rank 0's parameters and buffers at construction, all-reduces the
gradients in backward, and broadcasts rank 0's buffers (BatchNorm statistics) at the start of each
forward. A `DistributedSampler` gives each rank a disjoint share of the data.

One subtlety: each rank updates its BatchNorm running statistics with its *own* batch during
forward, after DDP's broadcast, so after the last step the replicas' buffers differ. The script
broadcasts rank 0's buffers once more at the end, so that every replica holds the model rank 0
saves (on GPUs, `--sync-bn` computes BatchNorm statistics over the global batch instead).

Data: scikit-learn's digits (1,797 real 8x8 images, bundled, no download), resized to the spec's
input size and repeated over its channels; `num_classes` is set to 10 to match. The backend is
NCCL on GPUs (one per rank, `LOCAL_RANK`), gloo on CPUs. Rank 0 prints the loss averaged over the
ranks. `--save DIR` writes each rank's final state_dict (`rank<R>.safetensors`, no pickle), the
indices of the samples it saw (`rank<R>.json`) and rank 0's initial weights (`initial.safetensors`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

import archspec
from archspec.spec.resolve import parse_assignment


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="example: torchrun --standalone --nproc_per_node=2 tools/train_ddp.py "
                                       "--spec resnet18 --input-size 32 --steps 20")
    p.add_argument("--spec", default="lenet5", help="a spec file or zoo name (default: lenet5)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec key, as `archspec build --set` (repeatable)")
    p.add_argument("--input-size", type=int, metavar="N", help="train at NxN (default: the spec's input size)")
    p.add_argument("--steps", type=int, default=20, help="optimisation steps (default: 20)")
    p.add_argument("--batch-size", type=int, default=16, help="samples per rank and step (default: 16)")
    p.add_argument("--lr", type=float, default=0.02, help="SGD learning rate, momentum 0.9 (default: 0.02)")
    p.add_argument("--seed", type=int, default=0, help="initialisation and sampler shuffling (default: 0)")
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto",
                   help="process-group backend (default: nccl with CUDA, else gloo)")
    p.add_argument("--sync-bn", action="store_true",
                   help="convert BatchNorm to SyncBatchNorm: statistics over the global batch (GPUs only)")
    p.add_argument("--save", type=Path, metavar="DIR", help="write each rank's final weights and sample indices here")
    p.add_argument("--log-every", type=int, default=1, metavar="K", help="print the loss every K steps (default: 1)")
    p.add_argument("--json", action="store_true", help="rank 0 prints a JSON summary at the end")
    args = p.parse_args(argv)
    if args.sync_bn and not torch.cuda.is_available():
        p.error("--sync-bn needs GPUs: torch's SyncBatchNorm has no CPU implementation")
    return args


def digits_dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """The 8x8 digits, scaled to [0, 1] and normalised: N x 1 x 8 x 8 floats, int64 labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return (x - x.mean()) / x.std(), torch.tensor(digits.target, dtype=torch.int64)


def to_input(x: torch.Tensor, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """Resize a batch of 1-channel images to the network's input and repeat it over `channels`."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False).expand(-1, channels, -1, -1).contiguous()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(backend: str) -> tuple[int, int, int, str]:
    """(rank, world size, local rank, backend), from torchrun's environment or as a single process."""
    if "RANK" not in os.environ:  # plain `python tools/train_ddp.py`: a world of one
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                           "MASTER_PORT": str(_free_port())})
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), local_rank, backend


def save_state(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(path))


def train(args: argparse.Namespace) -> dict:
    rank, world, local_rank, backend = init_distributed(args.backend)
    device = torch.device("cuda", local_rank) if backend == "nccl" else torch.device("cpu")
    try:
        overrides = dict(parse_assignment(text) for text in args.overrides)
        overrides["num_classes"] = 10  # the digits
        if args.input_size:
            overrides["input.size"] = [args.input_size, args.input_size]
        spec = archspec.load_spec(args.spec, **overrides)
        channels, size = spec.model.input.channels, tuple(spec.model.input.size)

        torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP would broadcast rank 0's anyway)
        model = archspec.build(spec).to(device)
        if args.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if args.save and rank == 0:
            args.save.mkdir(parents=True, exist_ok=True)
            save_state(model, args.save / "initial.safetensors")
        ddp = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        optimiser = torch.optim.SGD(ddp.parameters(), lr=args.lr, momentum=0.9)

        x_all, y_all = digits_dataset()
        sampler = DistributedSampler(range(len(y_all)), num_replicas=world, rank=rank, shuffle=True,
                                     seed=args.seed, drop_last=True)
        seen: list[int] = []
        losses: list[float] = []
        start = time.perf_counter()
        epoch = 0
        ddp.train()
        while len(losses) < args.steps:
            sampler.set_epoch(epoch)  # a different shuffle per epoch, the same on every rank
            for batch in torch.tensor(list(sampler)).split(args.batch_size):
                if len(losses) == args.steps:
                    break
                x = to_input(x_all[batch], channels, size).to(device)
                loss = F.cross_entropy(ddp(x), y_all[batch].to(device))
                optimiser.zero_grad()
                loss.backward()  # DDP all-reduces (averages) the gradients here
                optimiser.step()
                mean = loss.detach().clone()
                dist.all_reduce(mean)  # for the log only: the loss averaged over the ranks
                losses.append(mean.item() / world)
                seen.extend(batch.tolist())
                if rank == 0 and not args.json and len(losses) % args.log_every == 0:
                    print(f"step {len(losses):4d}  loss {losses[-1]:.4f}", flush=True)
            epoch += 1
        # Each rank's last forward updated its BatchNorm statistics with its own batch: take rank 0's.
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
        seconds = time.perf_counter() - start

        if args.save:
            dist.barrier()  # rank 0 has created the folder
            save_state(model, args.save / f"rank{rank}.safetensors")
            (args.save / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "indices": seen, "losses": losses}))
        result = {"spec": spec.name, "rank": rank, "world_size": world, "backend": backend, "steps": len(losses),
                  "batch_size": args.batch_size, "losses": losses, "seconds": seconds}
        if rank == 0:
            if args.json:
                print(json.dumps(result), flush=True)
            else:
                print(f"{spec.name}: {len(losses)} steps on {world} x {device.type} ({backend}), "
                      f"global batch {world * args.batch_size}, loss {losses[0]:.4f} -> {losses[-1]:.4f}, "
                      f"{seconds:.1f} s", flush=True)
        # Tear down together: a rank that destroys its gloo group while the other still uses its
        # connections can abort in gloo's threads ("terminate called without an active exception").
        dist.barrier()
        return result
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> dict:
    return train(parse_args(argv))


if __name__ == "__main__":
    main()
