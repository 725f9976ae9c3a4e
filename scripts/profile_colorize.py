"""Where the time of one colorization goes, fp32 and bf16 side by side: torch.profiler over `Colorizer.predict`
(network only, as `sscn bench` times it) on a random L batch with a cached reference, one table of operators by
self CPU time per precision and their ratio.

    python scripts/profile_colorize.py --size 256                 # a 256² image
    python scripts/profile_colorize.py --size 256 --batch-size 4  # as video frames go through the network

The shipped weights unless `--weights`; warm-up runs first, then `--runs` profiled runs.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from sscn.models.colorizer import Colorizer


def op_times(colorizer: Colorizer, l_norm: torch.Tensor, warmup: int, runs: int) -> dict[str, float]:
    """Self CPU milliseconds per run of each operator."""
    for _ in range(warmup):
        colorizer.predict(l_norm)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(runs):
            colorizer.predict(l_norm)
    times: dict[str, float] = defaultdict(float)
    for event in prof.key_averages():
        times[event.key] += event.self_cpu_time_total / 1000 / runs
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--weights", default=None, help="model file (default: the shipped weights)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20)
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    l_norm = torch.rand(args.batch_size, 1, args.size, args.size, generator=generator) * 2 - 1
    reference = torch.rand(3, args.size, args.size, generator=generator)
    times = {}
    for precision in ("fp32", "bf16"):
        colorizer = Colorizer(args.weights, device="cpu", precision=precision, size=args.size)
        colorizer.set_reference(reference)
        times[precision] = op_times(colorizer, l_norm, args.warmup, args.runs)
    totals = {precision: sum(t.values()) for precision, t in times.items()}
    print(f"{'operator':<52} {'fp32 ms':>9} {'bf16 ms':>9} {'ratio':>7}")
    ranked = sorted(set(times["fp32"]) | set(times["bf16"]), key=lambda op: -times["bf16"].get(op, 0.0))
    for op in ranked[:args.rows]:
        fp32, bf16 = times["fp32"].get(op, 0.0), times["bf16"].get(op, 0.0)
        print(f"{op[:52]:<52} {fp32:9.2f} {bf16:9.2f} {fp32 / bf16 if bf16 else float('inf'):7.2f}")
    print(f"{'all operators (self CPU, per run)':<52} {totals['fp32']:9.2f} {totals['bf16']:9.2f} "
          f"{totals['fp32'] / totals['bf16']:7.2f}")


if __name__ == "__main__":
    main()
