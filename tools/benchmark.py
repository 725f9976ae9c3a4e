"""Timing of the network with a cached reference: the measurements behind `sscn bench` (no CLI code here).

For each working size and attention mode the reference is encoded once (`Colorizer.set_reference`), then
`Colorizer.predict` is run on a batch of targets: warm-up runs first, then timed runs, each bracketed by
`torch.cuda.synchronize` on CUDA; the median is reported. With `compile` the first warm-up run builds the
torch.compile graph; its time is reported apart. Achieved TFLOP/s uses the FLOP count of
`tools.flops` and is compared with the device's dense peak at that precision where it is known.
"""
from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from sscn.models.colorizer import Colorizer
from sscn.models.sscn import SSCN

from sscn.constants import ATTENTION_MODES

from .flops import count_flops

# Dense (no sparsity) tensor-core peaks in TFLOP/s for bf16 / fp16, from the vendors' data sheets.
# Names are matched in order, so the more specific come first. fp32 is left out: whether convolutions and
# matrix products use TF32 depends on torch's settings, so there is no single peak to compare with.
_PEAK_TFLOPS_16BIT = (
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("GH200", 989.0),
    ("A100", 312.0), ("L40S", 362.0), ("L4", 121.0),
)


@dataclass
class Timing:
    size: int                      # working resolution (square)
    mode: str                      # "sparse" or "dense"
    batch_size: int
    positions: int                 # reference regions each query attends to (k + r, or all of them)
    runs: int
    ms_per_image: float            # median run time / batch size
    images_per_second: float
    peak_memory_mb: float | None   # CUDA: max allocated during this measurement; CPU: the process's peak RSS
    gflops_per_image: float        # per target, reference excluded (it is encoded once)
    achieved_tflops: float
    peak_fraction: float | None    # achieved / the device's dense peak, where known
    compile_seconds: float | None = None   # the first warm-up run, which compiles, when compiled
    error: str | None = None       # e.g. out of memory: the other figures are then 0
    precision: str = "fp32"        # as resolved by the engine (models.runtime.resolve_precision)

    def as_dict(self) -> dict:
        return asdict(self)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = _cpu_model() or platform.processor() or platform.machine()
    threads = torch.get_num_threads()
    return f"{model} ({threads} thread{'s' if threads > 1 else ''})"


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def peak_tflops(device: torch.device, precision: str) -> float | None:
    """The device's dense bf16/fp16 peak, or None (CPU, fp32, or a GPU not in the table)."""
    if device.type != "cuda" or precision not in ("bf16", "fp16"):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in _PEAK_TFLOPS_16BIT if key in name), None)


def peak_rss_mb() -> float | None:
    """This process's peak resident set size so far (it never goes down), in MB; None where unsupported."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6   # bytes on macOS, KiB on Linux


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_predict(colorizer: Colorizer, batch_size: int, runs: int, warmup: int) -> list[float]:
    """Seconds of each `predict` on a random batch (B, 1, S, S): `warmup` warm-up runs (left out of the median by
    `measure`), then `runs` more."""
    generator = torch.Generator().manual_seed(0)
    l_norm = (torch.rand(batch_size, 1, colorizer.size, colorizer.size, generator=generator) * 2 - 1)
    l_norm = l_norm.to(colorizer.device)
    seconds = []
    for index in range(warmup + runs):
        _synchronize(colorizer.device)
        start = time.perf_counter()
        colorizer.predict(l_norm)
        _synchronize(colorizer.device)
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(model: SSCN, size: int, mode: str, batch_size: int = 1, runs: int = 10, warmup: int = 2,
            device: str = "auto", precision: str = "auto", k: int | None = None,
            r: int | None = None, compile: bool = False) -> Timing:
    """One measurement: `model` at `size`² in `mode`, a cached reference, `runs` timed batches."""
    if mode not in ATTENTION_MODES:
        raise ValueError(f"unknown attention mode {mode!r}; choose sparse or dense")
    if runs < 1 or warmup < 0 or batch_size < 1:
        raise ValueError(f"need runs >= 1, warmup >= 0 and batch size >= 1 (got {runs}, {warmup}, {batch_size})")
    if compile and warmup < 1:
        raise ValueError("a compiled measurement needs warm-up >= 1 (the first run compiles)")
    if compile:
        torch._dynamo.reset()   # graphs of earlier measurements would count towards dynamo's recompile limit
    colorizer = Colorizer(model=model, device=device, precision=precision, size=size, k=k, r=r,
                          dense=mode == "dense", compile=compile)
    reference = torch.rand(3, colorizer.size, colorizer.size, generator=torch.Generator().manual_seed(1))
    colorizer.set_reference(reference)
    positions = colorizer.encoding().keys.shape[1]
    flops = count_flops(model, colorizer.size, dense=mode == "dense", k=colorizer.k, r=colorizer.r).target
    if colorizer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(colorizer.device)
    try:
        all_seconds = time_predict(colorizer, batch_size, runs, warmup)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return Timing(colorizer.size, mode, batch_size, positions, 0, 0.0, 0.0, None, flops / 1e9, 0.0, None,
                      error="out of memory", precision=colorizer.precision)
    seconds = statistics.median(all_seconds[warmup:])
    if colorizer.device.type == "cuda":
        peak_memory = torch.cuda.max_memory_allocated(colorizer.device) / 1e6
    else:
        peak_memory = peak_rss_mb()
    images_per_second = batch_size / seconds
    achieved = flops * images_per_second / 1e12
    peak = peak_tflops(colorizer.device, colorizer.precision)
    return Timing(colorizer.size, mode, batch_size, positions, runs, 1000 * seconds / batch_size,
                  images_per_second, peak_memory, flops / 1e9, achieved, achieved / peak if peak else None,
                  compile_seconds=all_seconds[0] if compile else None, precision=colorizer.precision)


def benchmark(model: SSCN, sizes: list[int], modes: tuple[str, ...] = ATTENTION_MODES,
              precisions: tuple[str, ...] = ("auto",),
              *, on_result: Callable[[Timing], None] | None = None, **options) -> list[Timing]:
    """`measure` for every size (ascending, so the CPU's peak RSS grows with the work), mode and precision; the
    precisions of one size and mode are measured back to back, so their ratio holds on a busy machine."""
    timings = []
    for size in sorted(sizes):
        for mode in modes:
            for precision in precisions:
                timing = measure(model, size, mode, precision=precision, **options)
                timings.append(timing)
                if on_result:
                    on_result(timing)
    return timings
