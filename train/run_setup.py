"""What a training run of `sscn train` is made of before its first step (train.loop runs it): the options and
their checks, the process group and the device, the model and the ImageNet teacher (§3.5), the learning-rate
schedule, the training state file and the preview grids."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from sscn.constants import TRAIN_PRECISIONS
from sscn.images import to_uint8
from sscn.models.checkpoint import load_checkpoint
from sscn.models.config import get_config
from sscn.models.encoder import EffNetLite0Encoder, load_lite0_imagenet_state
from sscn.models.outputs import atomic_write
from sscn.models.runtime import resolve_device
from sscn.models.sscn import SSCN

from .losses import LossWeights
from .pairs import PairSettings


@dataclass
class TrainOptions:
    data: str
    out: str
    config: str = "base"
    encoder: str | None = None       # override the config's encoder
    steps: int = 10000
    batch_size: int = 8
    lr: float = 1e-4
    warmup: int = 200                # at most a fifth of `steps`
    size: int = 256
    k: int | None = None
    r: int | None = None
    val: str | None = None
    init: str | None = None
    resume: bool = False
    device: str = "auto"
    seed: int = 0
    compile: bool = False
    precision: str = "auto"          # auto (bf16 where fast), fp32 or bf16 (forward/backward on a bf16 copy)
    freeze_encoder: bool = False     # keep E's backbone and classifier (so its CAM) fixed; the style MLP trains
    workers: int = min(4, os.cpu_count() or 1)
    log_every: int = 10
    preview_every: int = 500
    val_every: int = 500
    checkpoint_every: int = 500
    loss_weights: LossWeights = field(default_factory=LossWeights)
    pairs: PairSettings | None = None    # pair augmentation; its size is always `size`
    time_limit: float | None = None      # seconds of training over the whole run (--resume too); None: steps alone


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_kind: str) -> Distributed:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on CUDA)."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    dist.init_process_group("nccl" if device_kind == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(requested: str, ddp: Distributed) -> torch.device:
    """`requested` resolved (models.runtime); a plain "cuda" is this process's GPU under torchrun."""
    device = resolve_device(requested)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ddp.local_rank)
    return device


# The files of a run folder besides previews/ (written by rank 0)
RUN_FILES = ("options.json", "metrics.jsonl", "last.pt", "model.safetensors")


def check_options(options: TrainOptions) -> None:
    """Reject bad numbers before anything slow happens (ValueError, one line)."""
    if options.size < 32 or options.size % 32:
        raise ValueError(f"--size {options.size}: must be a multiple of 32 (E's stride), at least 32")
    for name in ("steps", "batch_size", "log_every", "preview_every", "val_every", "checkpoint_every"):
        if getattr(options, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if options.lr <= 0:
        raise ValueError(f"--lr {options.lr}: must be positive")
    if options.time_limit is not None and not options.time_limit > 0:
        raise ValueError(f"--time-limit {options.time_limit}: must be longer than zero")
    if options.precision not in TRAIN_PRECISIONS:
        raise ValueError(f"--precision {options.precision}: choose one of {', '.join(TRAIN_PRECISIONS)}")


def load_state(path: Path) -> dict:
    """A training checkpoint, read without unpickling arbitrary objects; ValueError naming the file if unreadable."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated / foreign files
        raise ValueError(f"{path}: not a readable training checkpoint ({type(error).__name__})") from None
    missing = {"model", "optimizer", "scheduler", "step"} - set(state) if isinstance(state, dict) else {"model"}
    if missing:
        raise ValueError(f"{path}: not an sscn training checkpoint (no {sorted(missing)[0]})")
    if "rng" not in state:
        # Written before the photo source had its own generator: keep the pair / selection streams.
        state["rng"] = [{"pair": pair, "select": select, "source": None}
                        for pair, select in zip(state["pair_rng"], state["select_rng"])]
    return state


def build_model(options: TrainOptions) -> SSCN:
    if options.init:
        model = load_checkpoint(options.init)
        if options.config != model.config.name and options.config != "base":
            raise ValueError(f"--init {options.init} holds config {model.config.name!r}, not {options.config!r}")
        return model.train()
    config = get_config(options.config)
    if options.encoder:
        config = config.replace(encoder=options.encoder)
    return SSCN(config, pretrained_encoder=config.encoder == "effnet-lite0").train()


def build_teacher(model: SSCN, device: torch.device, precision: str) -> EffNetLite0Encoder | None:
    """Frozen ImageNet EfficientNet-Lite0: its class scores are the distillation target of the CAM classifier.
    Stored channels_last, as the network, and under bf16 in bf16 once, so autocast casts none of its weights per
    step."""
    if model.config.encoder != "effnet-lite0":
        return None
    teacher = EffNetLite0Encoder(model.config, style_dim=1)
    teacher.load_imagenet(load_lite0_imagenet_state())
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return teacher.to(device, dtype, memory_format=torch.channels_last).eval().requires_grad_(False)


def freeze_encoder_backbone(model: SSCN) -> None:
    """Fix E's weights (see Trainer.train_mode for its BatchNorm statistics); only the style MLP keeps learning."""
    for name, param in model.encoder.named_parameters():
        param.requires_grad_(name.startswith("style_mlp."))


WARMUP_TIME_SHARE = 0.2    # under --time-limit the warm-up ends by this share of the time, and the cosine takes the rest


def lr_factor(step: int, warmup: int, total: int, time_progress: float = 0.0) -> float:
    """Linear warm-up, then cosine decay to 10 % of the base rate. By steps: `warmup` steps, then the cosine over the
    rest of `total`. By time (`time_progress`: the share of a time budget spent, train.budget): the warm-up ends by
    a fifth of the time at the latest and the cosine runs over the other four fifths. Whichever is further along
    sets the rate; without a time budget (time_progress 0) the steps alone do."""
    if step < warmup and time_progress < WARMUP_TIME_SHARE:
        return max((step + 1) / warmup, time_progress / WARMUP_TIME_SHARE)
    by_steps = (step - warmup) / max(1, total - warmup)
    by_time = (time_progress - WARMUP_TIME_SHARE) / (1.0 - WARMUP_TIME_SHARE)
    progress = min(1.0, max(by_steps, by_time, 0.0))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def save_preview(path: Path, gray: torch.Tensor, reference: torch.Tensor, stage1: torch.Tensor,
                 stage2: torch.Tensor, truth: torch.Tensor, rows: int = 4) -> None:
    """PNG grid, one pair per row: gray | reference | stage 1 | stage 2 | truth, each (B, 3, S, S) in [0, 1]."""
    from PIL import Image

    columns = [gray, reference, stage1, stage2, truth]
    grid = torch.cat([torch.cat([c[i] for c in columns], dim=2) for i in range(min(rows, truth.shape[0]))], dim=1)
    pixels = to_uint8(grid.cpu())                                                              # (rows*S, 5*S, 3)
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))

