# Sourced by scripts/device_*.sh on a lent GPU machine (from the repo root): the carried wheels and this repository
# installed into /tmp/site, offline (the machine reaches no registry; its own setuptools builds the package, whose
# folders map to `sscn`, `sscn.models`, ... as pyproject.toml says), and `sscn` as a shell function.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-compile --no-cache-dir --target /tmp/site .
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
sscn() { python3 -m sscn "$@"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c 'import torch, sscn; print("torch", torch.__version__, "cuda", torch.version.cuda, "sscn", sscn.__file__)'
