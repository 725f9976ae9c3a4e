"""Training throughput of `sscn train` on this device, fp32 and bf16 side by side in one run: pairs/s for a
config at a size, the share of the step spent building pairs (train.pairs.make_pairs, timed separately), and
the bf16 / fp32 speed ratio.

    python scripts/bench_train.py --config base --size 256 --batch-size 8
    python scripts/bench_train.py --config base --size 256 --batch-size 8 --freeze-encoder --device cuda

Both trainers are built first, then timed in alternating rounds (a few warm-up steps each, then whole
optimiser steps, batch drawing included), so drift of a shared machine falls on both alike. On CUDA,
torch.cuda.synchronize brackets every timing. Prints one line of JSON per precision, then the ratio.
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

from sscn.train.loop import Trainer  # noqa: E402
from sscn.train.run_setup import TrainOptions  # noqa: E402
from sscn.train.pairs import make_pairs  # noqa: E402


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


def run_steps(trainer: Trainer, count: int) -> None:
    for _ in range(count):
        trainer.train_step(*trainer.source.next())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="base", help="tiny, base or paper")
    parser.add_argument("--size", type=int, default=256, help="side of the square training crops")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--freeze-encoder", action="store_true", help="train with E's backbone fixed")
    parser.add_argument("--compile", action="store_true", help="torch.compile the network")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first, per precision")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per precision")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timing rounds the steps are split into")
    parser.add_argument("--data", default=str(REPO / "tests" / "data"), help="photo folder to draw batches from")
    args = parser.parse_args()
    precisions = args.precisions.split(",")

    with tempfile.TemporaryDirectory() as out:
        trainers = {precision: Trainer(TrainOptions(
            data=args.data, out=f"{out}/{precision}", config=args.config, steps=10 ** 6,
            batch_size=args.batch_size, size=args.size, device=args.device, precision=precision,
            freeze_encoder=args.freeze_encoder, compile=args.compile, workers=0)) for precision in precisions}
        for trainer in trainers.values():
            run_steps(trainer, args.warmup)
        seconds = dict.fromkeys(precisions, 0.0)
        per_round = max(1, args.steps // args.rounds)
        for _ in range(args.rounds):
            for precision, trainer in trainers.items():
                seconds[precision] += timed(trainer.device, lambda: run_steps(trainer, per_round))
        results = {}
        for precision, trainer in trainers.items():
            device = trainer.device
            step_s = seconds[precision] / (per_round * args.rounds)
            photos, _, partners = trainer.source.next()
            pairs_s = sum(timed(device, lambda: make_pairs(photos, trainer.pair_settings, trainer.pair_rng, partners))
                          for _ in range(3)) / 3
            results[precision] = {
                "precision": precision, "config": args.config, "size": args.size, "batch_size": args.batch_size,
                "device": str(device), "freeze_encoder": args.freeze_encoder, "compile": args.compile,
                "threads": torch.get_num_threads(), "timed_steps": per_round * args.rounds,
                "step_ms": round(step_s * 1000, 1), "pairs_per_s": round(args.batch_size / step_s, 2),
                "pairs_ms": round(pairs_s * 1000, 1), "pairs_share": round(pairs_s / step_s, 4),
            }
            if device.type == "cuda":
                results[precision]["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
            trainer.close()
    for result in results.values():
        print(json.dumps(result))
    if "fp32" in results and "bf16" in results:
        ratio = results["bf16"]["pairs_per_s"] / results["fp32"]["pairs_per_s"]
        print(json.dumps({"bf16_over_fp32": round(ratio, 2)}))


if __name__ == "__main__":
    main()
