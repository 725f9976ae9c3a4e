"""The training loop of `sscn train` (paper §3.5, §4.1).

Single process:   sscn train photos/ --out runs/base --config base --steps 20000
Several GPUs:     torchrun --nproc_per_node 8 -m colorize_cli train photos/ --out runs/base ...
CPU smoke (DDP):  torchrun --nproc_per_node 2 -m colorize_cli train photos/ --out runs/x --config tiny --device cpu

Adam (lr 1e-4, betas 0.9/0.999), bf16 autocast and channels_last on CUDA, optional torch.compile.
Checkpoints (`last.pt`) hold model, optimiser, scheduler, step and RNG state and are written atomically;
`--resume` continues exactly. `model.safetensors` (fp16) is the exported inference model.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from models.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from models.color import network_lab_to_rgb, rgb_to_network_lab
from models.config import get_config
from models.encoder import EffNetLite0Encoder, load_lite0_imagenet_state
from models.sscn import SSCN

from .data import PhotoFolder
from .losses import LossWeights, sscn_loss
from .pairs import PairSettings, make_pairs

IN_MEMORY_BYTES = 4 << 30   # datasets smaller than this (decoded) are held in memory / on the GPU


@dataclass
class TrainOptions:
    data: str
    out: str
    config: str = "base"
    encoder: str | None = None       # override the config's encoder
    steps: int = 10000
    batch_size: int = 8
    lr: float = 1e-4
    warmup: int = 200
    size: int = 256
    k: int | None = None
    r: int | None = None
    val: str | None = None
    init: str | None = None
    resume: bool = False
    device: str = "auto"
    seed: int = 0
    compile: bool = False
    freeze_encoder: bool = False     # keep E's backbone and classifier (so its CAM) fixed; the style MLP trains
    workers: int = 4
    log_every: int = 10
    preview_every: int = 500
    val_every: int = 500
    checkpoint_every: int = 500
    loss_weights: LossWeights = field(default_factory=LossWeights)
    pairs: PairSettings | None = None


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
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", ddp.local_rank)
    return device


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


def build_teacher(model: SSCN, device: torch.device) -> EffNetLite0Encoder | None:
    """Frozen ImageNet EfficientNet-Lite0: its class scores are the distillation target of the CAM classifier."""
    if model.config.encoder != "effnet-lite0":
        return None
    teacher = EffNetLite0Encoder(model.config, style_dim=1)
    teacher.load_imagenet(load_lite0_imagenet_state())
    return teacher.to(device).eval().requires_grad_(False)


def freeze_encoder_backbone(model: SSCN) -> None:
    """Fix E's weights (its BatchNorm statistics are frozen already); only the style MLP keeps learning."""
    for name, param in model.encoder.named_parameters():
        param.requires_grad_(name.startswith("style_mlp."))


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the base rate."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress))


def psnr(pred: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) per image of RGB in [0, 1], quantised to uint8 first: (B, 3, H, W) -> (B,)."""
    mse = ((pred * 255).round() - (truth * 255).round()).pow(2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(255.0 ** 2 / mse.clamp(min=1e-10))


class PhotoSource:
    """Batches of square uint8 photos (B, 3, S, S) on the device, plus labels (or None)."""

    def __init__(self, folder: PhotoFolder, batch_size: int, device: torch.device, workers: int,
                 generator: torch.Generator) -> None:
        self.batch_size, self.device, self.generator = batch_size, device, generator
        self.has_labels = folder.labels is not None
        decoded_bytes = len(folder) * 3 * folder.size ** 2
        if decoded_bytes <= IN_MEMORY_BYTES:
            photos, labels = folder.decoded()
            self.photos, self.labels = photos.to(device), labels.to(device)
            self.loader = None
        else:
            sampler = torch.utils.data.RandomSampler(folder, replacement=True, num_samples=1 << 62,
                                                     generator=torch.Generator().manual_seed(int(generator.initial_seed())))
            self.loader = iter(torch.utils.data.DataLoader(folder, batch_size=batch_size, sampler=sampler,
                                                           num_workers=workers, pin_memory=device.type == "cuda",
                                                           drop_last=True, persistent_workers=workers > 0))

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.loader is None:
            pick = torch.randint(0, len(self.photos), (self.batch_size,), generator=self.generator,
                                 device=self.generator.device).to(self.device)
            photos, labels = self.photos[pick], self.labels[pick]
        else:
            photos, labels = next(self.loader)
            photos, labels = photos.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        return photos, (labels if self.has_labels else None)


def save_preview(path: Path, gray: torch.Tensor, reference: torch.Tensor, stage1: torch.Tensor,
                 stage2: torch.Tensor, truth: torch.Tensor, rows: int = 4) -> None:
    """PNG grid, one pair per row: gray | reference | stage 1 | stage 2 | truth."""
    from PIL import Image

    columns = [gray.expand(-1, 3, -1, -1), reference, stage1, stage2, truth]
    grid = torch.cat([torch.cat([c[i] for c in columns], dim=2) for i in range(min(rows, truth.shape[0]))], dim=1)
    pixels = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    atomic_write(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


class Trainer:
    def __init__(self, options: TrainOptions) -> None:
        self.options = options
        self.out = Path(options.out)
        device_kind = "cuda" if options.device.startswith("cuda") or (
            options.device == "auto" and torch.cuda.is_available()) else "cpu"
        self.ddp = setup_distributed(device_kind)
        self.device = pick_device(options.device, self.ddp)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(options.seed)
        self.model = build_model(options).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.config = self.model.config
        if options.freeze_encoder:
            freeze_encoder_backbone(self.model)
        self.teacher = None if options.freeze_encoder else build_teacher(self.model, self.device)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=options.lr, betas=(0.9, 0.999))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, options.warmup, options.steps))
        rank_seed = options.seed * 1000 + self.ddp.rank
        self.pair_rng = torch.Generator(device=self.device).manual_seed(rank_seed)
        self.select_rng = torch.Generator().manual_seed(rank_seed)
        self.pair_settings = options.pairs or PairSettings(size=options.size)
        folder = PhotoFolder(options.data, size=round(options.size * 1.25))
        self.source = PhotoSource(folder, options.batch_size, self.device, options.workers, self.pair_rng)
        self.use_labels = (self.config.encoder == "resnet" and folder.labels is not None
                           and not options.freeze_encoder)
        if self.use_labels and len(folder.class_names) > self.config.num_classes:
            raise ValueError(f"{options.data}: {len(folder.class_names)} classes, but the config has "
                             f"{self.config.num_classes}")
        self.step = 0
        if options.resume:
            self._load_state()
        self.network = self.model
        if self.ddp.world > 1:
            self.network = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=not self.use_labels and self.teacher is None)
        if options.compile:
            self.network = torch.compile(self.network)
        self.val_photos = PhotoFolder(options.val, size=options.size).decoded()[0][:32] if options.val else None

    # -- state ------------------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return self.out / "last.pt"

    def _load_state(self) -> None:
        path = self._state_path()
        if not path.is_file():
            raise ValueError(f"{path}: nothing to resume (no checkpoint in --out)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.pair_rng.set_state(state["pair_rng"][self.ddp.rank])
        self.select_rng.set_state(state["select_rng"][self.ddp.rank])

    def _gather_rng(self, generator: torch.Generator) -> list[torch.Tensor]:
        state = generator.get_state()
        if self.ddp.world == 1:
            return [state]
        states = [torch.empty_like(state) for _ in range(self.ddp.world)]
        dist.all_gather_object(states, state)
        return states

    def save_state(self) -> None:
        pair_states, select_states = self._gather_rng(self.pair_rng), self._gather_rng(self.select_rng)
        if not self.ddp.main:
            return
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "step": self.step,
                 "pair_rng": pair_states, "select_rng": select_states, "config": self.config.to_json()}
        atomic_write(self._state_path(), lambda tmp: torch.save(state, tmp))
        save_checkpoint(self.model, self.out / "model.safetensors",
                        extra_metadata={"step": str(self.step), "trained_on": str(self.options.data)})

    # -- one step -----------------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def train_step(self, photos: torch.Tensor, labels: torch.Tensor | None) -> dict[str, float]:
        pair = make_pairs(photos, self.pair_settings, self.pair_rng)
        l_norm, ab_true = rgb_to_network_lab(pair.target)
        reference = pair.reference
        if self.device.type == "cuda":
            l_norm = l_norm.contiguous(memory_format=torch.channels_last)
            reference = reference.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            output = self.network(l_norm, reference, with_bins=True, k=self.options.k, r=self.options.r,
                                  generator=self.select_rng)
            teacher_logits = None
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(reference).logits
        loss, terms = sscn_loss(output, ab_true, output.reference_logits, self.options.loss_weights, self.config.ab_grid,
                                labels if self.use_labels else None, teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        terms["loss"] = float(loss.detach())
        terms["psnr_stage2"] = float(psnr(network_lab_to_rgb(l_norm.float(), output.ab.detach().float()),
                                          pair.target).mean())
        self.last_batch = (l_norm, pair.reference, output, pair.target)
        return terms

    # -- evaluation, preview, logging ----------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float:
        """Mean stage-2 PSNR on the held-out photos, with TPS references from a fixed seed."""
        self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(1234)
        settings = PairSettings(size=self.options.size, violent_share=0.0, palette_share=0.0,
                                target_scale=(1.0, 1.0), appearance=0.0)
        scores = []
        for start in range(0, len(self.val_photos), self.options.batch_size):
            photos = self.val_photos[start:start + self.options.batch_size].to(self.device)
            pair = make_pairs(photos, settings, generator)
            l_norm, _ = rgb_to_network_lab(pair.target)
            with self._autocast():
                output = self.model(l_norm, pair.reference, k=self.options.k, r=self.options.r,
                                    generator=torch.Generator().manual_seed(0))
            scores.append(psnr(network_lab_to_rgb(l_norm, output.ab.float()), pair.target))
        self.model.train()
        return float(torch.cat(scores).mean())

    def preview(self) -> None:
        l_norm, reference, output, truth = self.last_batch
        stage1 = network_lab_to_rgb(l_norm.float(), output.ab_coarse.detach().float())
        stage2 = network_lab_to_rgb(l_norm.float(), output.ab.detach().float())
        gray = (l_norm.float() + 1) / 2
        save_preview(self.out / "previews" / f"step{self.step:07d}.png", gray, reference, stage1, stage2, truth)

    def run(self, progress_callback=None) -> list[dict]:
        """Train to `options.steps`; returns the logged records. Only rank 0 writes files."""
        options, history = self.options, []
        if self.ddp.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "options.json").write_text(json.dumps(asdict(options), indent=2, default=str))
        metrics = (self.out / "metrics.jsonl").open("a") if self.ddp.main else None
        started, images_since = time.perf_counter(), 0
        try:
            while self.step < options.steps:
                photos, labels = self.source.next()
                terms = self.train_step(photos, labels)
                self.step += 1
                images_since += photos.shape[0] * self.ddp.world
                record = None
                if self.step % options.log_every == 0 or self.step == options.steps:
                    elapsed = time.perf_counter() - started
                    record = {"step": self.step, "lr": self.scheduler.get_last_lr()[0],
                              "images_per_s": images_since / max(elapsed, 1e-9), **terms}
                    started, images_since = time.perf_counter(), 0
                if self.ddp.main:
                    if self.val_photos is not None and (self.step % options.val_every == 0
                                                        or self.step == options.steps):
                        record = record or {"step": self.step, **terms}
                        record["val_psnr"] = self.validate()
                    if self.step % options.preview_every == 0 or self.step == options.steps:
                        self.preview()
                    if record is not None:
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                        history.append(record)
                if self.step % options.checkpoint_every == 0 or self.step == options.steps:
                    self.save_state()
                if progress_callback is not None and self.ddp.main:
                    progress_callback(self.step, terms)
        finally:
            if metrics is not None:
                metrics.close()
        return history

    def close(self) -> None:
        if self.ddp.world > 1:
            dist.destroy_process_group()
