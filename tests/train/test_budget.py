"""`sscn train --time-limit`: durations, the schedule that fits them, and runs the clock stops."""
from __future__ import annotations

import json

import pytest
import torch

from sscn.models.checkpoint import read_checkpoint
from sscn.train.budget import TimeBudget, format_duration, parse_duration
from sscn.train.loop import Trainer
from sscn.train.run_setup import lr_factor

from test_train import tiny_options    # tests/train is on sys.path (rootdir conftest, no package)


@pytest.mark.parametrize("text, seconds", [("45s", 45), ("20m", 1200), ("8h", 28800), ("1h30m", 5400),
                                           ("1.5h", 5400), ("2d", 172800), ("90", 5400), (" 1h 5m ", 3900),
                                           (".5m", 30), ("1H", 3600)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, problem", [("soon", "not a duration"), ("1x", "not a duration"), ("", "not a duration"),
                                           ("h", "not a duration"), ("-5m", "not a duration"), ("1m30", "not a duration"),
                                           ("0m", "must be longer than zero"), ("0", "must be longer than zero")])
def test_bad_durations_name_the_text(text, problem):
    with pytest.raises(ValueError, match=f"--time-limit '{text}': {problem}"):
        parse_duration(text)


def test_format_duration():
    assert [format_duration(s) for s in (4.2, 90, 3725, 28800)] == ["4s", "1m30s", "1h02m05s", "8h00m00s"]


def test_budget_counts_earlier_processes():
    budget = TimeBudget(100.0, spent_before=40.0)
    assert 40.0 <= budget.spent() < 41.0
    assert budget.fraction(60.0) == 0.6 and budget.fraction(250.0) == 1.0
    assert TimeBudget(None, 40.0).fraction() == 0.0


def test_schedule_follows_time_where_it_is_further_along():
    assert lr_factor(52, 4, 100, time_progress=0.0) == pytest.approx(0.55)       # the steps' cosine
    assert lr_factor(52, 4, 100, time_progress=0.3) == pytest.approx(0.55)       # time behind the steps: no change
    assert lr_factor(10, 4, 100, time_progress=0.6) == pytest.approx(0.55)       # time ahead: half of its cosine
    assert lr_factor(10, 4, 100, time_progress=1.0) == pytest.approx(0.1)        # spent: the floor
    assert lr_factor(1, 4, 100, time_progress=0.1) == 0.5                        # warm-up: steps ahead
    assert lr_factor(1, 4, 100, time_progress=0.15) == pytest.approx(0.75)       # warm-up: time ahead
    assert lr_factor(1, 4, 100, time_progress=0.2) == pytest.approx(1.0)         # a fifth of the time ends it
    assert lr_factor(50, 4, 100, time_progress=0.2) == pytest.approx(lr_factor(50, 4, 100))


def test_the_clock_decays_the_rate_and_stops_the_run(data_dir, tmp_path):
    """A clock that runs 10 s per step against a 100 s limit: the rate follows the time's cosine (not the 1000
    steps'), the run stops at step 10, checkpointed and exported, and a resume needs a longer limit."""
    out = tmp_path / "run"
    trainer = Trainer(tiny_options(data_dir, out, steps=1000, lr=1e-3, time_limit=100.0))
    trainer.budget.spent = lambda: 10.0 * trainer.step
    history = trainer.run()
    trainer.close()
    assert trainer.stopped_by_time and trainer.step == 10
    # the rate logged after step n (the next step's) was set from the time read after step n - 1; the step count
    # alone would have kept it near 1e-3
    assert [record["lr"] / 1e-3 for record in history] == pytest.approx(
        [lr_factor(step, 0, 1000, 0.1 * (step - 1)) for step in range(1, 11)])
    assert history[-1]["lr"] < 0.15e-3 and history[-1]["trained_s"] == 100.0
    state = torch.load(out / "last.pt", weights_only=True)
    assert state["step"] == 10 and state["trained_seconds"] == 100.0
    assert read_checkpoint(out / "model.safetensors")[2]["step"] == "10"

    with pytest.raises(ValueError, match=r"last\.pt: the run has trained for 1m40s, its whole --time-limit; pass a "
                                         r"longer one to continue it"):
        Trainer(tiny_options(data_dir, out, steps=1000, time_limit=100.0, resume=True))
    longer = Trainer(tiny_options(data_dir, out, steps=12, lr=1e-3, time_limit=3600.0, resume=True))
    assert longer.time_progress == pytest.approx(100.0 / 3600.0)                 # the checkpoint's time counts
    longer.run()
    longer.close()
    assert longer.step == 12 and not longer.stopped_by_time
    assert torch.load(out / "last.pt", weights_only=True)["trained_seconds"] > 100.0


def test_without_a_limit_the_schedule_is_the_steps_alone(data_dir, tmp_path):
    trainer = Trainer(tiny_options(data_dir, tmp_path / "run", steps=4, lr=1e-3))
    history = trainer.run()
    trainer.close()
    assert not trainer.stopped_by_time and trainer.time_progress == 0.0
    assert [round(record["lr"] / 1e-3, 6) for record in history] == [
        round(lr_factor(step, 0, 4), 6) for step in range(1, 5)]


class TestCLI:
    def test_time_limit_stops_and_says_so(self, run_sscn, data_dir, tmp_path):
        out = tmp_path / "run"
        result = run_sscn("train", data_dir, "--out", out, "--config", "tiny", "--steps", "100000", "--batch-size", "2",
                          "--size", "32", "--device", "cpu", "--time-limit", "3s", "--log-every", "1000")
        assert result.returncode == 0, result.stderr
        assert "(the time limit, 3s); weights in" in result.stderr
        step = int(read_checkpoint(out / "model.safetensors")[2]["step"])
        assert 1 <= step < 100000
        assert json.loads((out / "options.json").read_text())["time_limit"] == 3.0
        lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert lines[-1]["step"] == step and lines[-1]["trained_s"] >= 3.0

    def test_bad_time_limit_is_one_line(self, run_sscn, data_dir, tmp_path):
        result = run_sscn("train", data_dir, "--out", tmp_path / "run", "--config", "tiny", "--device", "cpu",
                          "--time-limit", "tomorrow")
        assert result.returncode == 2
        assert result.stderr.strip() == ("sscn: error: --time-limit 'tomorrow': not a duration; write it as e.g. "
                                         "45m, 8h or 1h30m")
        assert not (tmp_path / "run").exists()
