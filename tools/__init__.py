"""Measuring the network, apart from it: parameter and FLOP counts per config (flops.py, `python -m
sscn.tools.flops`) and the timings behind `sscn bench` (benchmark.py)."""
