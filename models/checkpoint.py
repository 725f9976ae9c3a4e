"""SSCN checkpoints: `.safetensors` files whose metadata carries the config, so a path alone rebuilds the model.

Loading never unpickles: safetensors holds plain tensors, and the header is validated before use.
"""
from __future__ import annotations

from pathlib import Path

import torch

from .config import SSCNConfig
from .outputs import atomic_write
from .sscn import SSCN

FORMAT = "sscn-checkpoint-v1"


class CheckpointError(ValueError):
    """A weights file that is missing, corrupt, truncated, not an SSCN checkpoint or of another architecture."""


def save_checkpoint(model: SSCN, path: str | Path, dtype: torch.dtype = torch.float16,
                    extra_metadata: dict[str, str] | None = None) -> None:
    """Write the model's weights (as `dtype`) and its config to `path` atomically."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().to("cpu", dtype if t.is_floating_point() else t.dtype).contiguous()
               for name, t in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": model.config.to_json(), **(extra_metadata or {})}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_checkpoint(path: str | Path) -> tuple[SSCNConfig, dict[str, torch.Tensor], dict[str, str]]:
    """Config, tensors (as stored) and metadata of a checkpoint; CheckpointError on any problem."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except Exception as error:  # safetensors raises several types for truncated / garbage files
        raise CheckpointError(f"{path}: not a readable safetensors file ({error})") from None
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise CheckpointError(f"{path}: not an sscn checkpoint (no sscn config in its metadata)")
    try:
        config = SSCNConfig.from_json(metadata["config"])
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: unreadable model config ({error})") from None
    return config, tensors, metadata


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> SSCN:
    """Rebuild the model from a checkpoint's config and load its weights (in float32), in eval mode."""
    config, tensors, _ = read_checkpoint(path)
    model = SSCN(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = sorted(n for n in set(expected) & set(tensors) if expected[n].shape != tensors[n].shape)
    if missing or unexpected or wrong_shape:
        detail = (missing and f"missing {missing[0]}") or (unexpected and f"unexpected {unexpected[0]}") \
            or f"shape of {wrong_shape[0]}"
        raise CheckpointError(f"{path}: weights do not match the {config.name!r} architecture ({detail})")
    model.load_state_dict({n: t.to(expected[n].dtype) for n, t in tensors.items()})
    return model.to(device).eval()


def default_weights_path() -> Path:
    """The `base` weights shipped inside the package."""
    return Path(__file__).parent / "weights" / "sscn-base.safetensors"
