"""Size limits of the CLI's --max-pixels: those of the decoder (sscn.images, where the memory they stand for is
stated), under the names the option declarations and the runner import."""
from sscn.images import DEFAULT_MAX_PIXELS, LARGEST_MAX_PIXELS

__all__ = ["DEFAULT_MAX_PIXELS", "LARGEST_MAX_PIXELS"]
