"""SSCN: the Semantic-Sparse Colorization Network (Bai et al., ECCV 2022) and its inference engine.

Module map (paper sections / equations):
  color.py      Lab <-> sRGB, the network's Lab scaling, quantised ab bins (eq. 5)
  config.py     named model sizes (tiny / base / paper)
  encoder.py    reference encoder E: multi-scale features, classifier + CAM, style MLP (§3.2, §3.3)
  gct.py        Global Color Transfer: VGG gray encoder + AdaIN decoder (§3.2, eq. 1)
  ldt.py        Local Details Transfer: correspondence features, S(C) selection, attention, U-Net (§3.3, eqs. 2-3)
  sscn.py       the two-stage network (§3.1, Fig. 2)
  checkpoint.py safetensors checkpoints with the config in their metadata
  outputs.py    atomic writes that never replace an input: the one way any file is written
  palette.py    palette (swatch) references
  references.py `Reference`: references encoded once, S(C) per (k, r); several pooled into one set (§3.3)
  library.py    reference library: descriptors from E, cached; automatic match
  runtime.py    device, precision, autocast and the model's layout for inference
  merge.py      full-resolution L merged with the upsampled ab (the output side of `Colorizer`)
  colorizer.py  `Colorizer`, the inference engine (the one way anything runs the network)

FLOP counts and timings live in sscn.tools (tools/flops.py, tools/benchmark.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from sscn.lazy import lazy_exports

if TYPE_CHECKING:
    from .checkpoint import CheckpointError, default_weights_path, load_checkpoint, read_checkpoint, save_checkpoint
    from .colorizer import ColorizeResult, Colorizer
    from .config import CONFIGS, SSCNConfig, get_config
    from .library import Match, ReferenceIndex
    from .references import Reference
    from .runtime import resolve_device
    from .sscn import SSCN, ReferenceEncoding, SSCNOutput

__all__ = [
    "CONFIGS", "CheckpointError", "ColorizeResult", "Colorizer", "Match", "Reference", "ReferenceEncoding",
    "ReferenceIndex", "SSCN", "SSCNConfig", "SSCNOutput", "default_weights_path", "get_config", "load_checkpoint",
    "read_checkpoint", "resolve_device", "save_checkpoint",
]
# imported on first use (sscn.lazy): the command line reads config.py's names without loading torch
__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(("CheckpointError", "default_weights_path", "load_checkpoint", "read_checkpoint",
                     "save_checkpoint"), ".checkpoint"),
    **dict.fromkeys(("ColorizeResult", "Colorizer"), ".colorizer"),
    **dict.fromkeys(("CONFIGS", "SSCNConfig", "get_config"), ".config"),
    **dict.fromkeys(("Match", "ReferenceIndex"), ".library"),
    "Reference": ".references",
    "resolve_device": ".runtime",
    **dict.fromkeys(("SSCN", "ReferenceEncoding", "SSCNOutput"), ".sscn"),
})
