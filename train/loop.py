"""The training loop of `sscn train` (paper §3.5, §4.1).

Single process:   sscn train photos/ --out runs/base --config base --steps 20000
Several GPUs:     torchrun --nproc_per_node 8 -m sscn train photos/ --out runs/base ...
CPU smoke (DDP):  torchrun --nproc_per_node 2 -m sscn train photos/ --out runs/x --config tiny --device cpu

Adam (lr 1e-4, betas 0.9/0.999) on fp32 master weights; where bf16 runs fast (CUDA, and CPUs with AVX-512
BF16 / AMX: `--precision auto`) forward and backward run on a bf16, channels_last copy of the network
(train.mixed), under autocast for the colour maths; optional torch.compile.
Checkpoints (`last.pt`) hold model, optimiser, scheduler, step and every process's RNG state and are written
atomically; `--resume` continues exactly. `model.safetensors` (fp16) is the exported inference model.

The run's parts (options, device, model, teacher, schedule, state file) are built by train.run_setup.
The hot path stays on the device: pairs are built there (train.pairs), loss terms stay tensors and are summed
on the device, and only logging steps convert them to numbers (one synchronisation per `log_every` steps).
"""
from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from sscn.models.checkpoint import save_checkpoint
from sscn.models.color import network_lab_to_rgb, rgb_to_network_lab
from sscn.models.outputs import atomic_write, check_output, remove_stale_parts
from sscn.models.runtime import autocast, resolve_device, resolve_precision
from sscn.models.sscn import SSCNOutput

from .budget import TimeBudget, format_duration
from .data import PhotoFolder, PhotoSource, find_photos, load_square, stream_seed
from .losses import sscn_loss
from .metrics import psnr
from .mixed import Bf16Compute
from .pairs import PairSettings, TrainingPair, make_pairs
from .run_setup import (TrainOptions, build_model, build_teacher, check_options, freeze_encoder_backbone, load_state,
                        lr_factor, pick_device, save_preview, setup_distributed)

VAL_PHOTOS = 32          # validation uses the first photos of --val (sorted by path)
PAIR_STREAM, SELECT_STREAM = 1, 2   # stream_seed streams of the pair generator and of the random selection


@dataclass
class LastBatch:
    """The latest step's inputs and outputs, detached: previews and the logged training PSNR use them."""
    l_norm: torch.Tensor      # (B, 1, S, S) in [-1, 1]
    reference: torch.Tensor   # (B, 3, S, S) in [0, 1]
    output: SSCNOutput
    truth: torch.Tensor       # (B, 3, S, S) in [0, 1]


def network_inputs(pair: TrainingPair) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The target's L scaled to [-1, 1] (B, 1, S, S), its true ab (B, 2, S, S) and the reference (B, 3, S, S),
    L and the reference laid out channels_last as the network is. L by .to, not .contiguous: a 1-channel tensor
    counts as channels_last already, and torch.cat of it with channels_last features would fall back to NCHW
    (a layout copy at every convolution after it)."""
    l_norm, ab_true = rgb_to_network_lab(pair.target)
    return (l_norm.to(memory_format=torch.channels_last), ab_true,
            pair.reference.contiguous(memory_format=torch.channels_last))


class Trainer:
    def __init__(self, options: TrainOptions) -> None:
        check_options(options)
        self.options = options
        self.out = Path(options.out)
        # Bad input fails here, before the process group, the model or the teacher are built.
        folder = PhotoFolder(options.data, size=round(options.size * 1.25))
        val_paths = find_photos(options.val)[:VAL_PHOTOS] if options.val else None
        state_path = self._state_path()
        if options.resume and not state_path.is_file():
            raise ValueError(f"{state_path}: nothing to resume (no checkpoint in --out)")
        if not options.resume and state_path.exists():
            raise ValueError(f"{self.out}: already holds a run (last.pt); pass --resume to continue it "
                             "or choose another --out")
        state = load_state(state_path) if options.resume else None
        self.budget = TimeBudget(options.time_limit, float(state.get("trained_seconds", 0.0)) if state else 0.0)
        self.time_progress = self.budget.fraction(self.budget.spent_before)   # the schedule's share of the time
        if self.time_progress >= 1.0:
            raise ValueError(f"{state_path}: the run has trained for {format_duration(self.budget.spent_before)}, "
                             f"its whole --time-limit; pass a longer one to continue it")
        self.stopped_by_time = False

        self.ddp = setup_distributed(resolve_device(options.device).type)
        self.device = pick_device(options.device, self.ddp)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True      # fixed input sizes: pick the fastest kernels once
        torch.manual_seed(options.seed)
        self.precision = resolve_precision(options.precision, self.device)    # auto, fp32 or bf16 (check_options)
        # channels_last is the layout cuDNN's and oneDNN's fast kernels want, bf16 and fp32 alike (fp32 training on
        # a CPU without native bf16: 1.4x the pairs/s of NCHW)
        self.model = build_model(options).to(self.device, memory_format=torch.channels_last)
        self.config = self.model.config
        if options.freeze_encoder:
            freeze_encoder_backbone(self.model)
        self.teacher = None if options.freeze_encoder else build_teacher(self.model, self.device, self.precision)
        self.use_labels = (self.config.encoder == "resnet" and folder.labels is not None
                           and not options.freeze_encoder)
        if self.use_labels and len(folder.class_names) > self.config.num_classes:
            raise ValueError(f"{options.data}: {len(folder.class_names)} classes, but the config has "
                             f"{self.config.num_classes}")
        if not self.use_labels and self.teacher is None:
            # No loss reaches the classifier; it still ranks CAM positions. Freezing it keeps every trainable
            # parameter in the graph, so DDP needs no search for unused parameters.
            self.model.encoder.classifier.requires_grad_(False)
        self.train_mode()
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=options.lr, betas=(0.9, 0.999),
                                          fused=self.device.type == "cuda")    # one kernel, step count on the GPU
        warmup = min(options.warmup, options.steps // 5)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup, options.steps, self.time_progress))
        self.pair_rng = torch.Generator(device=self.device).manual_seed(
            stream_seed(options.seed, self.ddp.rank, PAIR_STREAM))
        self.select_rng = torch.Generator().manual_seed(stream_seed(options.seed, self.ddp.rank, SELECT_STREAM))
        self.pair_settings = dataclasses.replace(options.pairs or PairSettings(), size=options.size)
        self.step = 0 if state is None else int(state["step"])
        self.source = PhotoSource(folder, options.batch_size, self.device, options.workers, options.seed,
                                  self.ddp.rank, self.ddp.world, start_step=self.step,
                                  partners=self.pair_settings.class_share > 0)
        if state is not None:
            self._load_state(state)
        self.mixed = Bf16Compute(self.model) if self.precision == "bf16" else None
        self.network = self.model if self.mixed is None else self.mixed.compute
        if self.ddp.world > 1:
            self.network = torch.nn.parallel.DistributedDataParallel(
                self.network, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if options.compile:
            self.network = torch.compile(self.network)
        self.val_photos = (torch.stack([load_square(p, options.size) for p in val_paths])
                           if val_paths and self.ddp.main else None)
        self.last_batch: LastBatch | None = None
        self._term_sums: torch.Tensor | None = None    # (T,) loss terms summed on the device since the last log
        self._term_names: list[str] = []
        self._summed_steps = 0

    def train_mode(self) -> None:
        """Training mode, except a frozen E stays in eval mode so its BatchNorm statistics stay fixed too."""
        self.model.train()
        if self.options.freeze_encoder:
            self.model.encoder.eval()

    # -- state ------------------------------------------------------------------------------------
    def _state_path(self) -> Path:
        return self.out / "last.pt"

    def _rng_state(self) -> dict[str, torch.Tensor | None]:
        return {"pair": self.pair_rng.get_state(), "select": self.select_rng.get_state(),
                "source": self.source.get_state()}

    def _load_state(self, state: dict) -> None:
        rng = state["rng"]
        if len(rng) != self.ddp.world:
            raise ValueError(f"{self._state_path()}: written by {len(rng)} processes; resume it with as many "
                             f"(this run has {self.ddp.world})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        mine = rng[self.ddp.rank]
        self.pair_rng.set_state(mine["pair"])
        self.select_rng.set_state(mine["select"])
        self.source.set_state(mine["source"])

    def save_state(self) -> None:
        """Checkpoint (every process takes part: rank 0 gathers the RNG states, then writes)."""
        rng = [self._rng_state()]
        if self.ddp.world > 1:
            gathered: list[dict | None] = [None] * self.ddp.world
            dist.all_gather_object(gathered, rng[0])
            rng = gathered
        if not self.ddp.main:
            return
        if self.mixed is not None:
            self.mixed.buffers_to_master()
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict(), "step": self.step, "rng": rng,
                 "trained_seconds": self.budget.spent(), "config": self.config.to_json()}
        atomic_write(self._state_path(), lambda tmp: torch.save(state, tmp))
        save_checkpoint(self.model, self.out / "model.safetensors",
                        extra_metadata={"step": str(self.step), "trained_on": str(self.options.data)})

    # -- one step -----------------------------------------------------------------------------------
    def train_step(self, photos: torch.Tensor, labels: torch.Tensor | None,
                   partners: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """One optimiser step on a batch of photos (B, 3, H, W) uint8 on the device (and, for class pairs,
        another photo of each one's class). Returns the detached loss terms as 0-dim device tensors (no
        synchronisation here)."""
        pair = make_pairs(photos, self.pair_settings, self.pair_rng, partners)
        l_norm, ab_true, reference = network_inputs(pair)
        with autocast(self.device, self.precision):
            # The reference image goes through the (DDP-wrapped) forward, which encodes it: one forward per step.
            output = self.network(l_norm, reference, with_bins=True, k=self.options.k, r=self.options.r,
                                  generator=self.select_rng)
            teacher_logits = None
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(reference).logits
        loss, terms = sscn_loss(output, ab_true, output.reference_logits, self.options.loss_weights,
                                self.config.ab_grid, labels if self.use_labels else None, teacher_logits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.mixed is not None:
            self.mixed.gradients_to_master()
        self.optimizer.step()
        if self.mixed is not None:
            self.mixed.weights_from_master()
        self.scheduler.step()
        self.last_batch = LastBatch(l_norm.detach(), pair.reference,
                                    SSCNOutput(output.ab_coarse.detach(), output.ab.detach(), None,
                                               output.reference_logits.detach()), pair.target)
        return {"loss": loss.detach(), **terms}

    def _accumulate(self, terms: dict[str, torch.Tensor]) -> None:
        values = torch.stack([value.float() for value in terms.values()])          # (T,)
        if self._term_sums is None:
            self._term_names, self._term_sums = list(terms), torch.zeros_like(values)
        self._term_sums += values
        self._summed_steps += 1

    def _mean_terms(self) -> dict[str, float]:
        """Loss terms averaged over the steps since the last log (and over processes): one synchronisation."""
        sums = self._term_sums / self._summed_steps
        if self.ddp.world > 1:
            dist.all_reduce(sums)
            sums /= self.ddp.world
        means = dict(zip(self._term_names, sums.tolist()))
        self._term_sums.zero_()
        self._summed_steps = 0
        return means

    def batch_psnr(self) -> float:
        """Mean stage-2 PSNR of the latest training batch against its truth."""
        batch = self.last_batch
        return float(psnr(network_lab_to_rgb(batch.l_norm.float(), batch.output.ab.float()), batch.truth).mean())

    # -- evaluation, preview, logging ----------------------------------------------------------------
    @torch.no_grad()
    def validate(self) -> float:
        """Mean stage-2 PSNR on the held-out photos: each photo whole as the target, with a TPS / rotation /
        crop reference drawn from a fixed seed, so every validation sees the same pairs."""
        if self.mixed is not None:
            self.mixed.buffers_to_master()          # BatchNorm statistics, updated on the bf16 copy
        self.model.eval()
        generator = torch.Generator(device=self.device).manual_seed(1234)
        settings = PairSettings(size=self.options.size, violent_share=0.0, palette_share=0.0,
                                target_scale=(1.0, 1.0), appearance=0.0)
        scores = []
        for start in range(0, len(self.val_photos), self.options.batch_size):
            photos = self.val_photos[start:start + self.options.batch_size].to(self.device)
            pair = make_pairs(photos, settings, generator)
            l_norm, _, reference = network_inputs(pair)
            with autocast(self.device, self.precision):
                output = self.model(l_norm, reference, k=self.options.k, r=self.options.r,
                                    generator=torch.Generator().manual_seed(0))
            scores.append(psnr(network_lab_to_rgb(l_norm, output.ab.float()), pair.target))
        self.train_mode()
        return float(torch.cat(scores).mean())

    def preview(self) -> None:
        batch = self.last_batch
        l_norm = batch.l_norm.float()
        gray = network_lab_to_rgb(l_norm, torch.zeros_like(l_norm).expand(-1, 2, -1, -1))
        stage1 = network_lab_to_rgb(l_norm, batch.output.ab_coarse.float())
        stage2 = network_lab_to_rgb(l_norm, batch.output.ab.float())
        save_preview(self.out / "previews" / f"step{self.step:07d}.png", gray, batch.reference, stage1, stage2,
                     batch.truth)

    def _open_metrics(self):
        """metrics.jsonl: a fresh run starts it; a resumed run drops lines logged after its checkpoint."""
        path = self.out / "metrics.jsonl"
        check_output(path)      # a log appended line by line: guarded, but not written through a temporary file
        if not self.options.resume or not path.is_file():
            return path.open("w")
        kept = [line for line in path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= self.step]
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(line + "\n" for line in kept)))
        return path.open("a")

    def run(self, progress_callback: Callable[[int, dict | None], None] | None = None) -> list[dict]:
        """Train to `options.steps`; returns the logged records. Only rank 0 writes files.

        `progress_callback(step, record)` is called on rank 0 after every step; `record` is the metrics line
        on logging steps, None otherwise.
        """
        options, history = self.options, []
        if self.ddp.main:
            for folder in (self.out, self.out / "previews"):     # left by a run that was killed
                remove_stale_parts(folder)
            text = json.dumps(asdict(options), indent=2, default=str)
            atomic_write(self.out / "options.json", lambda tmp: Path(tmp).write_text(text))
        metrics = self._open_metrics() if self.ddp.main else None
        started, images_since = time.perf_counter(), 0
        self.budget.start()
        try:
            while self.step < options.steps:
                photos, labels, partners = self.source.next()
                self._accumulate(self.train_step(photos, labels, partners))
                self.step += 1
                images_since += photos.shape[0] * self.ddp.world
                self.stopped_by_time = self._track_time(self.step % options.log_every == 0)
                last = self.step == options.steps or self.stopped_by_time
                record = None
                if self.step % options.log_every == 0 or last:
                    terms = self._mean_terms()              # every process takes part (all_reduce)
                    elapsed = time.perf_counter() - started
                    record = {"step": self.step, "lr": self.scheduler.get_last_lr()[0],
                              "images_per_s": images_since / max(elapsed, 1e-9), **terms,
                              "psnr_stage2": self.batch_psnr(), "trained_s": round(self.budget.spent(), 1)}
                    started, images_since = time.perf_counter(), 0
                if self.ddp.main:
                    if self.val_photos is not None and (self.step % options.val_every == 0 or last):
                        record = record or {"step": self.step}
                        record["val_psnr"] = self.validate()
                    if self.step % options.preview_every == 0 or last:
                        self.preview()
                    if record is not None:
                        metrics.write(json.dumps(record) + "\n")
                        metrics.flush()
                        history.append(record)
                if self.step % options.checkpoint_every == 0 or last:
                    self.save_state()
                if progress_callback is not None and self.ddp.main:
                    progress_callback(self.step, record)
                if last:
                    break
        finally:
            if metrics is not None:
                metrics.close()
        return history

    def _track_time(self, logging_step: bool) -> bool:
        """Move the schedule's time share on; True once the time budget is spent. A single process reads its clock
        every step; under DDP every process takes rank 0's clock at logging steps (one broadcast), so that all of
        them decay their learning rate alike and stop at the same step."""
        if self.budget.limit is None:
            return False
        if self.ddp.world == 1:
            self.time_progress = self.budget.fraction()
        elif logging_step:
            spent = torch.tensor([self.budget.spent()], dtype=torch.float64, device=self.device)
            dist.broadcast(spent, src=0)
            self.time_progress = self.budget.fraction(float(spent))
        return self.time_progress >= 1.0

    def close(self) -> None:
        self.source.close()
        if self.ddp.world > 1:
            dist.destroy_process_group()
