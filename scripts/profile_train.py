"""Where a training step's time goes: torch.profiler over a few `Trainer.train_step` calls of one precision,
the top operators by self time (CPU and, on CUDA, device).

    python scripts/profile_train.py --config base --size 256 --batch-size 8 --precision bf16

Builds the trainer as `scripts/bench_train.py` does (photos from tests/data, workers=0), runs warm-up steps,
then profiles `--steps` steps and prints the table; `--trace FILE` also writes a Chrome trace.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sscn.train.loop import Trainer  # noqa: E402
from sscn.train.run_setup import TrainOptions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="base")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="bf16", help="fp32 or bf16")
    parser.add_argument("--freeze-encoder", action="store_true")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rows", type=int, default=30, help="operators to print")
    parser.add_argument("--trace", help="write a Chrome trace here too")
    parser.add_argument("--data", default=str(REPO / "tests" / "data"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(TrainOptions(
            data=args.data, out=out, config=args.config, steps=10 ** 6, batch_size=args.batch_size,
            size=args.size, device=args.device, precision=args.precision, freeze_encoder=args.freeze_encoder,
            workers=0))
        for _ in range(args.warmup):
            trainer.train_step(*trainer.source.next())
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if trainer.device.type == "cuda" else [])
        with profile(activities=activities, record_shapes=True) as prof:
            for _ in range(args.steps):
                trainer.train_step(*trainer.source.next())
            if trainer.device.type == "cuda":
                torch.cuda.synchronize(trainer.device)
        trainer.close()
    sort = "self_cuda_time_total" if trainer.device.type == "cuda" else "self_cpu_time_total"
    by_shape = prof.key_averages(group_by_input_shape=True)
    print(by_shape.table(sort_by=sort, row_limit=args.rows, max_name_column_width=40, max_shapes_column_width=60))
    print(prof.key_averages().table(sort_by=sort, row_limit=args.rows, max_name_column_width=50))
    if args.trace:
        prof.export_chrome_trace(args.trace)


if __name__ == "__main__":
    main()
