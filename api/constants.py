"""The names and limits the command line shows before anything runs, torch-free, so that `sscn --help` and
argument errors do not wait for torch to load (about 3 s). Each is also exported by the module that uses it
(`sscn.images`, `sscn.models.runtime`, `sscn.train.methods`, ...), which is where a reader looks for it."""
from __future__ import annotations

# Which files are photos and videos: what `sscn colorize DIR`, `sscn evaluate DIR` and `sscn train DIR` look for.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm",
                            ".pgm", ".pnm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".m2ts", ".3gp", ".ogv"})
# Peak memory grows by about 25 bytes a pixel of the largest image in a batch (the decoded input, its
# full-resolution L, the upsampled ab, the RGB output and the PNG encoder's buffers) over the model's own
# (under 1 GB on the CPU); the default of 100 Mpx (12000 x 8000) peaks near 3.5 GB.
DEFAULT_MAX_PIXELS = 100_000_000
LARGEST_MAX_PIXELS = 1_000_000_000

PRECISIONS = ("auto", "fp32", "bf16", "fp16")          # inference (models/runtime.py)
TRAIN_PRECISIONS = ("auto", "fp32", "bf16")            # training (train/run_setup.py)
UPSAMPLERS = ("guided", "bilinear")                    # ab to the photo's size (models/upsample.py)
ATTENTION_MODES = ("sparse", "dense")                  # what `sscn bench` times (tools/benchmark.py)
BUDGETS = ("each", "shared")                           # positions of several references (models/references.py)
DESCRIPTORS = ("pooled", "cam")                        # reference library matching (models/library.py)

# `sscn evaluate --methods`: the network's three readings (train/methods.py), then the classic baselines
# (train/baselines.py)
NETWORK_METHODS = ("sscn", "dense", "stage1")
BASELINE_METHODS = ("reinhard", "welsh", "copy-gray")
METHODS = (*NETWORK_METHODS, *BASELINE_METHODS)
