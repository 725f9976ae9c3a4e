"""Reference modes on the real-reference protocol (issue 18): library match vs a random reference of the same
kind, the two match descriptors, and two references (each / shared budget) vs one.

The kinds come from a pairs CSV (target,reference,kind): a photo's kinds are those of the rows naming it.
Every photo with a kind is a target; the library is every *other* photo of the root folder. Targets are
scored as `sscn evaluate --pairs` scores them (train.evaluate_pairs.resize_short_side, train.methods scores),
through `Colorizer` with one seed.

    python scripts/reference_modes.py --pairs docs/val_pairs.csv --root ../shared/data/photos/val
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sscn.images import read_image  # noqa: E402
from sscn.cli.library_match import library_photos  # noqa: E402
from sscn.cli.targets import read_csv_rows  # noqa: E402
from sscn.models import Colorizer  # noqa: E402
from sscn.models.library import DESCRIPTORS, ReferenceIndex  # noqa: E402
from sscn.models.references import BUDGETS  # noqa: E402
from sscn.train.methods import mean_scores, score_results  # noqa: E402
from sscn.train.evaluate_pairs import resize_short_side  # noqa: E402


def kinds_of(pairs: Path) -> dict[str, set[str]]:
    """{photo name: its kinds} from the target,reference,kind rows."""
    kinds: dict[str, set[str]] = defaultdict(set)
    for _, cells in read_csv_rows(pairs, "target,reference[,kind]"):
        if len(cells) == 3 and cells[2]:
            kinds[cells[0]].add(cells[2])
            kinds[cells[1]].add(cells[2])
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="score only the first N targets (0: all)")
    args = parser.parse_args()

    kinds = kinds_of(args.pairs)
    photos = library_photos(args.root)
    pixels = {path.name: read_image(path).pixels for path in photos}
    colorizer = Colorizer(weights=args.weights, device="cpu", size=args.size, seed=args.seed)
    targets = [name for name in pixels if kinds.get(name)][:args.limit or None]
    rng = random.Random(args.seed)

    def same_kind(a: str, b: str) -> bool:
        return bool(kinds.get(a, set()) & kinds.get(b, set()))

    with tempfile.TemporaryDirectory() as cache:
        indexes = {d: ReferenceIndex(colorizer, photos, lambda p: pixels[p.name], d, Path(cache)) for d in DESCRIPTORS}
        picks = {d: {t: [m.path.name for m in index.match(pixels[t], 2, exclude=[args.root / t])]
                     for t in targets} for d, index in indexes.items()}
    report: dict = {"targets": len(targets), "library": len(photos),
                    "same_kind_top1": {d: sum(same_kind(t, p[t][0]) for t in targets) / len(targets)
                                       for d, p in picks.items()}}
    rows: dict[str, list[dict]] = defaultdict(list)
    for target in targets:
        truth = resize_short_side(pixels[target], args.size)
        peers = sorted(name for name in pixels if name != target and same_kind(target, name))
        setups = {"random same kind": [rng.choice(peers)],
                  **{f"library ({d})": picks[d][target][:1] for d in DESCRIPTORS},
                  **{f"library top-2 ({d}, each)": picks[d][target] for d in DESCRIPTORS}}
        if len(peers) >= 2:
            setups["kind: one (first peer)"] = peers[:1]
            setups.update({f"kind: two ({budget})": peers[:2] for budget in BUDGETS})
        for name, chosen in setups.items():
            budget = "shared" if "shared" in name else "each"
            colorizer.set_references([pixels[c] for c in chosen], budget)
            [result] = colorizer.colorize([truth])
            scores = score_results({name: result.rgb[None].float() / 255}, truth[None].float() / 255,
                                   image_float(pixels[chosen[0]]))[name]
            rows[name].append({metric: values[0] for metric, values in scores.items()})
        print(target, {n: f"{rows[n][-1]['psnr']:.2f}" for n in setups}, file=sys.stderr, flush=True)
    report["scores"] = {name: {"n": len(r), **{m: round(v, 3) for m, v in mean_scores(r).items() if v is not None}}
                        for name, r in rows.items()}
    print(json.dumps(report, indent=2))


def image_float(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 -> (1, 3, H, W) float in [0, 1]."""
    return image[None].float() / 255


if __name__ == "__main__":
    main()
