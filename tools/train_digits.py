"""Train the zoo's LeNet-5 on scikit-learn's handwritten digits: a compiled spec learns real data.

    python tools/train_digits.py                  # accuracy and time
    python tools/train_digits.py --json           # {"accuracy": ..., "seconds": ..., "epochs": ...}

Why this example: parity tests prove that a compiled network computes what torchvision's does,
but not that it *trains*: that gradients reach every layer, that the head follows `num_classes`,
that nothing in the generated modules blocks autograd. The digits set (1,797 8x8 greyscale images
from UCI, bundled with scikit-learn, so no download) is real data that a correct LeNet-5 fits to
well over 95 % test accuracy in seconds on a laptop CPU, and a broken one does not.

The images are upsampled to the spec's 32x32 input (bilinear), scaled from 0..16 to [0, 1] and
normalised with the training split's mean and standard deviation. The split is stratified 80/20
with a fixed `random_state`; the seed fixes initialisation and batch order, so a run is repeatable.
Adam with a one-cycle learning rate (peak 3e-3), batches of 32, 10 epochs: about 3 s on two
cores, 97.5-99 % over seeds 0-7 (the issue asks for 95 %).

One torch thread by default: batches of 32 LeNet-5 inputs are too small for intra-op parallelism
to pay, and on a machine whose other core is busy, two threads made a run 7x slower (22 s vs 3 s).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import archspec

SIZE = 32  # the lenet5 spec's input: 1x32x32


def digits_tensors(seed: int = 0, test_size: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_train, y_train, x_test, y_test): N x 1 x 32 x 32 float tensors, normalised; int64 labels."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # 0..16 -> [0, 1]
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(range(len(labels)), test_size=test_size, random_state=seed,
                                           stratify=digits.target)
    x_train, x_test = images[train_idx], images[test_idx]
    mean, std = x_train.mean(), x_train.std()  # statistics of the training split only
    return (x_train - mean) / std, labels[train_idx], (x_test - mean) / std, labels[test_idx]


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def train(epochs: int = 10, seed: int = 0, batch_size: int = 32, lr: float = 3e-3) -> dict:
    """Train lenet5 on the digits; returns accuracy (on the held-out 20 %), seconds and epochs."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    x_train, y_train, x_test, y_test = digits_tensors(seed)
    model = archspec.build("lenet5", num_classes=10)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(y_train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps) if steps else None
    order = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(epochs):
        model.train()
        total = 0.0
        for batch in torch.randperm(len(y_train), generator=order).split(batch_size):
            loss = F.cross_entropy(model(x_train[batch]), y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            if schedule:
                schedule.step()
            total += loss.item() * len(batch)
        losses.append(total / len(y_train))
    return {"accuracy": accuracy(model, x_test, y_test), "seconds": time.perf_counter() - start, "epochs": epochs,
            "train_loss": losses, "train_size": len(y_train), "test_size": len(y_test)}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="passes over the training split (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="initialisation, batch order and split (default: 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default: 1; see the module docstring)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    result = train(epochs=args.epochs, seed=args.seed)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"lenet5 on digits: {result['accuracy']:.2%} test accuracy ({result['test_size']} images), "
              f"{result['epochs']} epochs in {result['seconds']:.1f} s")
    return result


if __name__ == "__main__":
    main()
