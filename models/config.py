"""Named SSCN model sizes, looked up by name everywhere (CLI, checkpoints, tests).

Like timm's registry: one table, built by name. `tiny` is for tests, `base` is the shipped model,
`paper` follows the widths of the paper (VGG19 gray encoder, 64-512 channels).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

ENCODERS = ("effnet-lite0", "resnet")


@dataclass(frozen=True)
class SSCNConfig:
    name: str
    encoder: str = "effnet-lite0"          # reference encoder E (§3.2): "effnet-lite0" | "resnet"
    resnet_widths: tuple[int, ...] = (32, 64, 128, 256, 512)  # F1..F5 of the `resnet` encoder
    num_classes: int = 1000                # classifier of E (CAM, §3.3); 1000 = ImageNet for effnet-lite0
    style_hidden: int = 256                # MLP width for the AdaIN style vector (§3.2)
    gray_widths: tuple[int, ...] = (64, 128, 256, 512)  # VGG19 stages up to relu4_1 (§3.2)
    attn_dim: int = 128                    # width of W_q / W_k (eq. 2)
    value_dim: int = 128                   # width of W_v (eq. 3)
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32)  # U-Net decoder at 1/16, 1/8, 1/4, 1/2
    temperature: float = 0.01              # softmax temperature of the cosine correlation
    k: int = 256                           # top-k CAM positions (§4.1)
    r: int = 256                           # random extra positions (§4.1)
    ab_grid: int = 10                      # histogram bins of the ab plane (eq. 5), grid size 10

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose one of {', '.join(ENCODERS)}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SSCNConfig":
        fields = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(fields) - known
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
        for key, value in fields.items():
            if isinstance(value, list):
                fields[key] = tuple(value)
        return cls(**fields)

    def replace(self, **changes) -> "SSCNConfig":
        return dataclasses.replace(self, **changes)


CONFIGS: dict[str, SSCNConfig] = {
    "tiny": SSCNConfig(
        name="tiny", encoder="resnet", resnet_widths=(8, 16, 24, 32, 48), num_classes=10,
        style_hidden=32, gray_widths=(8, 16, 24, 32), attn_dim=16, value_dim=16,
        decoder_widths=(32, 24, 16, 8), k=16, r=16,
    ),
    "base": SSCNConfig(
        name="base", gray_widths=(16, 32, 64, 128), attn_dim=128, value_dim=96,
        decoder_widths=(128, 96, 48, 24),
    ),
    "paper": SSCNConfig(
        name="paper", encoder="resnet", resnet_widths=(64, 128, 256, 512, 512),
        gray_widths=(64, 128, 256, 512), attn_dim=256, value_dim=256,
        decoder_widths=(512, 256, 128, 64),
    ),
}


def get_config(name: str) -> SSCNConfig:
    try:
        return CONFIGS[name]
    except KeyError:
        raise ValueError(f"unknown config {name!r}; choose one of {', '.join(CONFIGS)}") from None
