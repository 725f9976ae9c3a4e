"""Checkpoints: round trip, and every kind of bad weights file fails with a CheckpointError naming the path."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sscn.models import CheckpointError, SSCN, get_config, load_checkpoint, read_checkpoint, save_checkpoint


def _tiny(seed: int = 0) -> SSCN:
    torch.manual_seed(seed)
    return SSCN(get_config("tiny")).eval()


def _forward(model: SSCN) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    l_norm = torch.rand(1, 1, 64, 64, generator=generator) * 2 - 1
    ref_rgb = torch.rand(1, 3, 64, 64, generator=generator)
    with torch.no_grad():
        return model(l_norm, ref_rgb, generator=torch.Generator().manual_seed(0)).ab


def test_round_trip_float32(tmp_path):
    model = _tiny()
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path, dtype=torch.float32, extra_metadata={"step": "12"})
    loaded = load_checkpoint(path)
    assert loaded.config == model.config and not loaded.training
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], tensor, atol=0, rtol=0)
    torch.testing.assert_close(_forward(loaded), _forward(model), atol=0, rtol=0)
    assert read_checkpoint(path)[2]["step"] == "12"


def test_round_trip_fp16_default(tmp_path):
    model = _tiny()
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path)
    _, tensors, metadata = read_checkpoint(path)
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {torch.float16}
    assert json.loads(metadata["config"])["name"] == "tiny"
    loaded = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    for name, tensor in model.state_dict().items():
        expected = tensor.half().float() if tensor.is_floating_point() else tensor
        torch.testing.assert_close(loaded.state_dict()[name], expected, atol=0, rtol=0)


def test_save_leaves_no_temporary_files(tmp_path):
    save_checkpoint(_tiny(), tmp_path / "model.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def _assert_checkpoint_error(path, match: str) -> None:
    with pytest.raises(CheckpointError, match=match) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_missing(tmp_path):
    _assert_checkpoint_error(tmp_path / "nowhere.safetensors", "not found")


def test_directory(tmp_path):
    _assert_checkpoint_error(tmp_path, "not found")


def test_corrupt_random_bytes(tmp_path):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(os.urandom(4096))
    _assert_checkpoint_error(path, "not a readable safetensors file")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.touch()
    _assert_checkpoint_error(path, "not a readable safetensors file")


def test_truncated(tmp_path, tiny_weights):
    data = tiny_weights.read_bytes()
    path = tmp_path / "truncated.safetensors"
    path.write_bytes(data[:len(data) // 2])
    _assert_checkpoint_error(path, "not a readable safetensors file")


def _with_config(source, path, config_text: str):
    """Copy checkpoint `source` to `path` with its config metadata replaced by `config_text`."""
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    save_file(tensors, str(path), metadata={**metadata, "config": config_text})
    return path


def test_other_architecture(tmp_path, tiny_weights):
    path = _with_config(tiny_weights, tmp_path / "relabelled.safetensors", get_config("base").to_json())
    _assert_checkpoint_error(path, "do not match the 'base' architecture")


def test_not_an_sscn_checkpoint(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3, 3)}, str(path), metadata={"format": "pt"})
    _assert_checkpoint_error(path, "not an sscn checkpoint")
    save_file({"weight": torch.zeros(3, 3)}, str(path))
    _assert_checkpoint_error(path, "not an sscn checkpoint")


@pytest.mark.parametrize("config_text", ["{not json", "[1, 2]", '{"name": "x", "depth": 3}', "null"])
def test_unreadable_config(tmp_path, tiny_weights, config_text):
    path = _with_config(tiny_weights, tmp_path / "bad-config.safetensors", config_text)
    _assert_checkpoint_error(path, "unreadable model config")
