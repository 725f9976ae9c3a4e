"""Size limits, light to import (the option declarations read them before torch is loaded).

Peak memory grows by about 25 bytes a pixel of the largest image in a batch (the decoded input, its
full-resolution L, the upsampled ab, the RGB output and the PNG encoder's buffers) over the model's own
(under 1 GB on the CPU). A batch holds at most `--max-pixels`, so the default of 100 Mpx (12000 x 8000)
peaks near 3.5 GB.
"""
DEFAULT_MAX_PIXELS = 100_000_000
LARGEST_MAX_PIXELS = 1_000_000_000
