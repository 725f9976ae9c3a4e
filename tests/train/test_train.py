"""The training loop (train.loop) and `sscn train`: it learns, resumes exactly, runs under DDP (gloo), exports
an fp16 inference checkpoint, and rejects bad input with one line.

Training here runs on one intra-op thread (OMP_NUM_THREADS=1 for subprocesses): the `tiny` model gains
little from more, and on shared CI cores several OpenMP threads per process make every step crawl.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from sscn.models.checkpoint import load_checkpoint, read_checkpoint
from sscn.train.loop import Trainer
from sscn.train.run_setup import TrainOptions, lr_factor
from sscn.train.pairs import PairSettings


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def class_folder(tmp_path, photo_paths) -> Path:
    """The four photos as two classes of two."""
    for index, path in enumerate(photo_paths):
        target = tmp_path / "classes" / ("left" if index < 2 else "right")
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    return tmp_path / "classes"


def tiny_options(data: Path, out: Path, **changes) -> TrainOptions:
    settings = dict(data=str(data), out=str(out), config="tiny", steps=4, batch_size=2, size=32, warmup=0,
                    device="cpu", workers=0, log_every=1, preview_every=1000, val_every=1000, checkpoint_every=1000)
    return TrainOptions(**{**settings, **changes})


def test_bf16_training_keeps_fp32_master_weights_and_tracks_fp32(data_dir, tmp_path):
    """bf16 autocast (channels_last) against fp32 from the same weights, batches and pairs: the first losses
    agree to a few per cent, and the optimiser updates fp32 weights."""
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        trainer = Trainer(tiny_options(data_dir, tmp_path / precision, precision=precision, size=64))
        losses[precision] = [float(trainer.train_step(*trainer.source.next())["loss"]) for _ in range(3)]
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
        conv = next(module for module in trainer.model.modules() if isinstance(module, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)       # both precisions
        trainer.close()
    for fp32, bf16 in zip(losses["fp32"], losses["bf16"]):
        assert bf16 == pytest.approx(fp32, rel=0.05), losses


def test_unknown_precision_is_refused(data_dir, tmp_path):
    with pytest.raises(ValueError, match="--precision fp16: choose one of auto, fp32, bf16"):
        Trainer(tiny_options(data_dir, tmp_path / "run", precision="fp16"))


def test_lr_schedule():
    assert [lr_factor(step, 4, 100) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 100) == pytest.approx(1.0)
    assert lr_factor(52, 4, 100) == pytest.approx(0.55)
    assert lr_factor(100, 4, 100) == pytest.approx(0.1)
    assert lr_factor(500, 4, 100) == pytest.approx(0.1)


def test_overfits_four_photos(data_dir, tmp_path):
    """Loss falls by at least half within 150 steps and stage-2 PSNR on the photos rises."""
    options = tiny_options(data_dir, tmp_path / "run", steps=150, batch_size=4, size=64, lr=3e-3, log_every=10,
                           val=str(data_dir), val_every=150, checkpoint_every=150,
                           pairs=PairSettings(violent_share=0.0, palette_share=0.0, recolor_share=0.0, paste_share=0.0,
                                              target_scale=(1.0, 1.0),
                                              max_rotation_deg=5.0, tps_strength=0.05))
    trainer = Trainer(options)
    psnr_before = trainer.validate()
    history = trainer.run()
    losses = [record["loss"] for record in history]
    assert len(losses) == 15 and all(math.isfinite(loss) for loss in losses)
    assert (losses[-1] + losses[-2]) / 2 <= 0.5 * losses[0], losses
    assert history[-1]["val_psnr"] > psnr_before + 2.0, (psnr_before, history[-1]["val_psnr"])


def test_resume_continues_exactly(data_dir, tmp_path):
    straight = Trainer(tiny_options(data_dir, tmp_path / "straight", steps=6, checkpoint_every=3))
    straight_history = straight.run()

    def interrupt(step: int, record: dict | None) -> None:
        if step == 4:                 # one step past the checkpoint at 3: that step is redone on resume
            raise KeyboardInterrupt

    first = Trainer(tiny_options(data_dir, tmp_path / "split", steps=6, checkpoint_every=3))
    with pytest.raises(KeyboardInterrupt):
        first.run(interrupt)
    state = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    assert state["step"] == 3 and {"model", "optimizer", "scheduler", "rng"} <= set(state)
    resumed = Trainer(tiny_options(data_dir, tmp_path / "split", steps=6, checkpoint_every=3, resume=True))
    assert resumed.step == 3
    resumed.run()

    for name, tensor in straight.model.state_dict().items():
        assert torch.equal(tensor, resumed.model.state_dict()[name]), name
    assert resumed.scheduler.get_last_lr() == straight.scheduler.get_last_lr()
    lines = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]
    for got, expected in zip(lines, straight_history):
        assert got["loss"] == expected["loss"] and got["lr"] == expected["lr"]


def test_resumes_a_checkpoint_with_per_stream_rng_lists(data_dir, tmp_path):
    """Checkpoints written before the photo source had its own generator held `pair_rng` / `select_rng` lists."""
    Trainer(tiny_options(data_dir, tmp_path / "run", steps=2)).run()
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    rng = state.pop("rng")
    state["pair_rng"], state["select_rng"] = [rng[0]["pair"]], [rng[0]["select"]]
    torch.save(state, tmp_path / "run" / "last.pt")
    resumed = Trainer(tiny_options(data_dir, tmp_path / "run", steps=3, resume=True))
    assert torch.equal(resumed.pair_rng.get_state(), rng[0]["pair"])
    resumed.run()
    assert resumed.step == 3


def test_unreadable_checkpoint_is_one_line(data_dir, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="last.pt: not a readable training checkpoint"):
        Trainer(tiny_options(data_dir, tmp_path / "run", resume=True))


@pytest.mark.parametrize("labelled", [False, True], ids=["no-labels", "class-folders"])
def test_every_trainable_parameter_learns(data_dir, class_folder, tmp_path, labelled):
    """So DDP can run without searching for unused parameters: the classifier trains only with labels."""
    trainer = Trainer(tiny_options(class_folder if labelled else data_dir, tmp_path / "run"))
    assert trainer.use_labels == labelled
    assert trainer.model.encoder.classifier.weight.requires_grad == labelled
    trainer.train_step(*trainer.source.next())
    for name, param in trainer.model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert trainable == sum(p.numel() for group in trainer.optimizer.param_groups for p in group["params"])


def test_train_step_keeps_terms_on_the_device(data_dir, tmp_path):
    trainer = Trainer(tiny_options(data_dir, tmp_path / "run"))
    terms = trainer.train_step(*trainer.source.next())
    assert set(terms) == {"loss", "stage1", "stage2", "cls", "tv", "his"}
    assert all(isinstance(value, torch.Tensor) and value.dim() == 0 for value in terms.values())


def test_trains_after_inference_in_the_same_process(data_dir, tmp_path):
    """Colour constants cached on first use must stay usable by autograd even if that use was inference."""
    from sscn.models import color

    color._constant_on.cache_clear()
    with torch.inference_mode():
        color.rgb_to_network_lab(torch.rand(1, 3, 8, 8))
    trainer = Trainer(tiny_options(data_dir, tmp_path / "run"))
    assert torch.isfinite(trainer.train_step(*trainer.source.next())["loss"])


def test_freeze_encoder_trains_only_the_style_mlp(data_dir, tmp_path):
    trainer = Trainer(tiny_options(data_dir, tmp_path / "run", steps=2, freeze_encoder=True))
    before = {name: t.clone() for name, t in trainer.model.encoder.state_dict().items()}
    trainer.run()
    for name, tensor in trainer.model.encoder.state_dict().items():
        changed = not torch.equal(tensor, before[name])
        assert changed == (name.startswith("style_mlp.") and tensor.is_floating_point()), name


def test_init_starts_from_the_given_weights(data_dir, tmp_path, tiny_weights):
    trainer = Trainer(tiny_options(data_dir, tmp_path / "run", init=str(tiny_weights)))
    shipped = load_checkpoint(tiny_weights).state_dict()
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, shipped[name]), name


def test_fresh_run_refuses_an_existing_run(data_dir, tmp_path):
    Trainer(tiny_options(data_dir, tmp_path / "run", steps=1)).run()
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(tiny_options(data_dir, tmp_path / "run", steps=2))


def test_ddp_gloo_two_processes(class_folder, tmp_path):
    """torchrun with two CPU processes (gloo); labelled data, so the classifier trains as well."""
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "sscn", "train", str(class_folder), "--out", str(out), "--config", "tiny",
               "--steps", "3", "--batch-size", "2", "--size", "32", "--device", "cpu", "--workers", "0",
               "--log-every", "1", "--checkpoint-every", "2", "--preview-every", "3", "--time-limit", "1h"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("trained to step 3") == 1              # only rank 0 reports
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]            # only rank 0 logs
    assert lines[0]["images_per_s"] > 0
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 3 and len(state["rng"]) == 2            # both ranks' generators are saved
    assert not torch.equal(state["rng"][0]["pair"], state["rng"][1]["pair"])
    load_checkpoint(out / "model.safetensors")
    assert sorted(p.name for p in out.iterdir()) == ["last.pt", "metrics.jsonl", "model.safetensors",
                                                    "options.json", "previews"]


class TestCLI:
    def test_trains_and_exports_fp16(self, run_sscn, data_dir, tmp_path):
        out = tmp_path / "run"
        result = run_sscn("train", data_dir, "--out", out, "--config", "tiny", "--steps", "3", "--batch-size", "2",
                          "--size", "32", "--device", "cpu", "--log-every", "2", "--preview-every", "2",
                          "--val", data_dir, "--val-every", "3", "--checkpoint-every", "2")
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        assert "trained to step 3" in result.stderr
        config, tensors, metadata = read_checkpoint(out / "model.safetensors")
        assert config.name == "tiny" and metadata["step"] == "3"
        assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
        model = load_checkpoint(out / "model.safetensors")
        assert model.config.name == "tiny"
        lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [line["step"] for line in lines] == [2, 3]
        assert {"loss", "stage1", "stage2", "cls", "tv", "his", "lr", "images_per_s", "psnr_stage2"} <= set(lines[0])
        assert "val_psnr" in lines[-1] and 5 < lines[-1]["val_psnr"] < 100
        previews = sorted(p.name for p in (out / "previews").iterdir())
        assert previews == ["step0000002.png", "step0000003.png"]
        with Image.open(out / "previews" / previews[-1]) as grid:
            assert grid.size == (5 * 32, 2 * 32)                 # gray | reference | stage 1 | stage 2 | truth

        resumed = run_sscn("train", data_dir, "--out", out, "--config", "tiny", "--steps", "4", "--batch-size", "2",
                           "--size", "32", "--device", "cpu", "--resume")
        assert resumed.returncode == 0, resumed.stderr
        assert read_checkpoint(out / "model.safetensors")[2]["step"] == "4"

    def test_class_pairs_train_from_class_folders(self, run_sscn, class_folder, tmp_path):
        out = tmp_path / "run"
        result = run_sscn("train", class_folder, "--out", out, "--config", "tiny", "--steps", "2", "--batch-size", "2",
                          "--size", "32", "--device", "cpu", "--class-share", "1.0", "--log-every", "1")
        assert result.returncode == 0, result.stderr
        assert json.loads((out / "options.json").read_text())["pairs"]["class_share"] == 1.0
        assert read_checkpoint(out / "model.safetensors")[2]["step"] == "2"

    @pytest.mark.parametrize("case", ["missing", "empty"])
    def test_bad_photo_folder(self, run_sscn, tmp_path, case):
        folder = tmp_path / "photos"
        if case == "empty":
            folder.mkdir()
            (folder / "readme.txt").write_text("no photos here")
        result = run_sscn("train", folder, "--out", tmp_path / "run", "--config", "tiny", "--device", "cpu")
        assert result.returncode == 2
        expected = "not a folder of photos" if case == "missing" else "no photos found"
        assert result.stderr.startswith(f"sscn: error: {folder}: {expected}")
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "run").exists()

    def test_resume_with_nothing_to_resume(self, run_sscn, data_dir, tmp_path):
        result = run_sscn("train", data_dir, "--out", tmp_path / "run", "--config", "tiny", "--device", "cpu",
                          "--resume")
        assert result.returncode == 2
        assert result.stderr.strip() == f"sscn: error: {tmp_path / 'run' / 'last.pt'}: nothing to resume " \
                                        "(no checkpoint in --out)"

    def test_bad_size(self, run_sscn, data_dir, tmp_path):
        result = run_sscn("train", data_dir, "--out", tmp_path / "run", "--config", "tiny", "--size", "50")
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "--size 50" in result.stderr
