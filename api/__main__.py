"""`python -m sscn`: the same app as the `sscn` console script."""
from sscn.cli.app import app

app(prog_name="sscn")
