"""Command-line interface of sscn."""
__version__ = "0.1.0"
