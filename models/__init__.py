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
  references.py several references pooled into one attention set (§3.3)
  library.py    reference library: descriptors from E, cached; automatic match
  colorizer.py  `Colorizer`, the inference engine
  flops.py      parameter and FLOP counts per config
  benchmark.py  timing of the network with a cached reference (`sscn bench`)
"""
from .checkpoint import CheckpointError, default_weights_path, load_checkpoint, read_checkpoint, save_checkpoint
from .colorizer import ColorizeResult, Colorizer, resolve_device
from .config import CONFIGS, SSCNConfig, get_config
from .library import Match, ReferenceIndex
from .sscn import SSCN, ReferenceEncoding, SSCNOutput

__all__ = [
    "CONFIGS", "CheckpointError", "ColorizeResult", "Colorizer", "Match", "ReferenceEncoding", "ReferenceIndex",
    "SSCN", "SSCNConfig", "SSCNOutput", "default_weights_path", "get_config", "load_checkpoint", "read_checkpoint",
    "resolve_device", "save_checkpoint",
]
