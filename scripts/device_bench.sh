#!/usr/bin/env bash
# The GPU figures of the README's speed table, in few runs on a lent GPU machine (issue #7).
#
# Here (once, from the repo root; needs the shared data beside the checkout and PyPI):
#   bash scripts/device_bench.sh prepare
# writes two git-ignored folders: .whl (imageio-ffmpeg, ffmpeg-python and future, which the device lacks) and
# .bench (the 35 val photos, longest side 512, and traffic-bw.mp4 scaled to 1280x720). Then, through `device`:
#   run(command="bash scripts/device_bench.sh eager", carry=[".whl", ".bench"], timeout_s=600)
#   run(command="bash scripts/device_bench.sh compiled", carry=[".whl", ".bench"], timeout_s=600)
# Each writes its JSON reports, the same as Markdown tables for the README, and logs under $OUT (8 files at most).
set -euo pipefail
cd "$(dirname "$0")/.."

prepare() {
    local data=${SSCN_DATA:-../shared/data}
    rm -rf .whl .bench && mkdir -p .whl .bench/photos
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux2014_x86_64 --platform any -d .whl \
        imageio-ffmpeg==0.6.0 ffmpeg-python==0.2.0 future==1.0.0
    python3 - "$data/photos/val" .bench/photos <<'PY'
import sys
from pathlib import Path
from PIL import Image
source, target = map(Path, sys.argv[1:])
for path in sorted(source.glob("*.jpg")):
    with Image.open(path) as image:
        image = image.convert("RGB")
        image.thumbnail((512, 512))
        image.save(target / path.name, quality=90)
PY
    sscn_ffmpeg -loglevel error -y -i "$data/video/traffic-bw.mp4" -vf scale=1280:720 -c:v libx264 -crf 20 \
        -pix_fmt yuv420p .bench/traffic-720p.mp4
    du -sh .whl .bench
}

sscn_ffmpeg() {
    "$(python3 -c 'from sscn.cli.video import ffmpeg_exe; print(ffmpeg_exe())')" "$@"
}

# On the device: the carried wheels and the repo installed, `sscn` as a function (scripts/device_setup.sh), and a
# folder of JPEGs. Not in a pipeline: its exports and the function must outlive it.
setup_device() {
    source scripts/device_setup.sh
    # 2048 JPEGs of 256x256: centre crops of the val photos, flipped and shifted so the decoder sees new files
    python3 - .bench/photos /tmp/folder256 <<'PY'
import sys
from pathlib import Path
from PIL import Image, ImageOps
source, target = map(Path, sys.argv[1:])
target.mkdir(exist_ok=True)
photos = [Image.open(path).convert("L") for path in sorted(source.glob("*.jpg"))]
for index in range(2048):
    photo = photos[index % len(photos)]
    shift = (index // len(photos)) % 16 * 4
    crop = ImageOps.fit(photo, (256 + shift, 256 + shift)).crop((shift, shift, 256 + shift, 256 + shift))
    (ImageOps.mirror(crop) if index // len(photos) % 2 else crop).save(target / f"{index:04d}.jpg", quality=90)
PY
}

network() {   # $1: extra options; $2: report name; $3: batch sizes
    for batch in $3; do
        sscn bench --device cuda --sizes 256,512,1024 --batch-size "$batch" --config base $1 --json \
            > "/tmp/$2-b$batch.json" 2>> "$OUT/$2.log" || echo "batch $batch failed" >> "$OUT/$2.log"
    done
    python3 - "$OUT/$2" /tmp/"$2"-b*.json <<'PY'
import json, sys
from sscn.cli.bench_tables import markdown
reports = [json.load(open(path)) for path in sys.argv[2:] if open(path).read().strip()]
json.dump(reports, open(sys.argv[1] + ".json", "w"), indent=1)
open(sys.argv[1] + ".md", "w").write("\n\n".join(markdown(report) for report in reports) + "\n")
PY
}

end_to_end() {   # $1: extra options; $2: report name
    sscn bench --device cuda --sizes 256 --modes sparse --batch-size 64 --runs 3 $1 \
        --folder /tmp/folder256 --video .bench/traffic-720p.mp4 --markdown > "$OUT/$2-e2e.md" 2>> "$OUT/$2.log"
}

case "${1:-}" in
    prepare)
        prepare ;;
    eager)
        setup_device > "$OUT/setup.log" 2>&1 && cat "$OUT/setup.log"
        python3 -m pytest -q -m cuda tests 2>&1 | tail -20 | tee "$OUT/cuda-tests.log" || true
        network "" eager "1 16 64 256"
        end_to_end "" eager
        # the same with fp16 and fp32, batch 64, for the precision column
        for precision in fp16 fp32; do
            sscn bench --device cuda --sizes 256,512,1024 --batch-size 64 --config base --precision "$precision" \
                --markdown >> "$OUT/eager-precisions.md" 2>> "$OUT/eager.log" || true
        done ;;
    compiled)
        setup_device > "$OUT/setup.log" 2>&1
        network "--compile --warmup 3" compiled "64"
        end_to_end "--compile" compiled ;;
    *)
        echo "usage: bash scripts/device_bench.sh prepare|eager|compiled" >&2
        exit 2 ;;
esac
