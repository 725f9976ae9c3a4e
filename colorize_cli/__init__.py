"""Command-line interface of sscn."""
import warnings

from PIL import Image

__version__ = "0.1.0"

# Pillow's bomb check warns beyond its limit (sscn.images.read_image raises it to the largest --max-pixels and
# checks sizes against --max-pixels from the header itself): in the CLI the warning is an error, one line too
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
