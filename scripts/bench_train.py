"""Training throughput of `sscn train` on this device: images/s for a config at a size, and the share of the
step spent building pairs (train.pairs.make_pairs, timed separately).

    python scripts/bench_train.py --config base --size 256 --batch-size 8
    python scripts/bench_train.py --config base --size 256 --batch-size 8 --freeze-encoder --device cuda

A few warm-up steps, then timed steps (whole optimiser steps, batch drawing included), with
torch.cuda.synchronize around every timing on CUDA. Prints one line of JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from train.loop import Trainer, TrainOptions  # noqa: E402
from train.pairs import make_pairs  # noqa: E402


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work) -> float:
    """Seconds `work()` takes, device work included."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="base", help="tiny, base or paper")
    parser.add_argument("--size", type=int, default=256, help="side of the square training crops")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--freeze-encoder", action="store_true", help="train with E's backbone fixed")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=5, help="timed steps")
    parser.add_argument("--data", default=str(REPO / "tests" / "data"), help="photo folder to draw batches from")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(TrainOptions(
            data=args.data, out=out, config=args.config, steps=args.warmup + args.steps, batch_size=args.batch_size,
            size=args.size, device=args.device, freeze_encoder=args.freeze_encoder, compile=args.compile, workers=0))
        device = trainer.device

        def steps(count: int) -> None:
            for _ in range(count):
                trainer.train_step(*trainer.source.next())

        steps(args.warmup)
        step_s = timed(device, lambda: steps(args.steps)) / args.steps
        photos, _ = trainer.source.next()
        pairs_s = sum(timed(device, lambda: make_pairs(photos, trainer.pair_settings, trainer.pair_rng))
                      for _ in range(args.steps)) / args.steps
        trainer.close()

    result = {
        "config": args.config, "size": args.size, "batch_size": args.batch_size, "device": str(device),
        "freeze_encoder": args.freeze_encoder, "compile": args.compile, "threads": torch.get_num_threads(),
        "timed_steps": args.steps, "step_ms": round(step_s * 1000, 1),
        "images_per_s": round(args.batch_size / step_s, 2), "pairs_ms": round(pairs_s * 1000, 1),
        "pairs_share": round(pairs_s / step_s, 4),
    }
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
