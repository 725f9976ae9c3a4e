"""Does bf16 training follow fp32? Two runs from the same weights, seed and pairs, one per precision; prints
their loss curves (means over windows of `--window` steps) side by side and the relative gap per window.

    python scripts/compare_precisions.py --config tiny --size 128 --steps 200

Both runs draw identical batches and pairs (the pair generator is fp32 in both), so the only difference is
the autocast dtype of the forward: a gap within the window-to-window noise of either curve means bf16 trains
like fp32.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sscn.train.loop import Trainer  # noqa: E402
from sscn.train.run_setup import TrainOptions  # noqa: E402


def loss_curve(options: TrainOptions, window: int) -> list[float]:
    trainer = Trainer(options)
    losses = [float(trainer.train_step(*trainer.source.next())["loss"]) for _ in range(options.steps)]
    trainer.close()
    return [sum(losses[i:i + window]) / window for i in range(0, len(losses), window)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data", default=str(REPO / "tests" / "data"))
    args = parser.parse_args()
    curves = {}
    with tempfile.TemporaryDirectory() as out:
        for precision in ("fp32", "bf16"):
            torch.manual_seed(0)
            curves[precision] = loss_curve(TrainOptions(
                data=args.data, out=f"{out}/{precision}", config=args.config, steps=args.steps, lr=args.lr,
                batch_size=args.batch_size, size=args.size, device="cpu", precision=precision, workers=0),
                args.window)
    for index, (fp32, bf16) in enumerate(zip(curves["fp32"], curves["bf16"])):
        print(json.dumps({"steps": f"{index * args.window + 1}-{(index + 1) * args.window}",
                          "fp32": round(fp32, 4), "bf16": round(bf16, 4), "gap": round(bf16 / fp32 - 1, 4)}))


if __name__ == "__main__":
    main()
