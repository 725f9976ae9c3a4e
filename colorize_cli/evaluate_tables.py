"""The tables `sscn evaluate` prints on stderr (rich), one per protocol. Every score cell reads
PSNR (dB) / SSIM / ΔE00 / colourfulness ratio / HIS, or a stated subset."""
from __future__ import annotations

from .errors import stderr_is_terminal

CELL_TITLE = "PSNR (dB) / SSIM / ΔE00 / colourfulness / HIS"
CELL_METRICS = ("psnr", "ssim", "de00", "colorfulness_ratio", "his")
_DIGITS = {"psnr": 2, "ssim": 3, "de00": 2, "colorfulness_ratio": 2, "his": 3}


def console():
    from rich.console import Console

    # a log file gets the table unwrapped; a terminal gets its own width
    return Console(stderr=True, width=None if stderr_is_terminal() else 200)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cell(scores: dict | None, metrics: tuple[str, ...] = CELL_METRICS) -> str:
    """'30.26 / 0.954 / 4.21 / 0.93 / 0.764' for the metrics asked for; '-' without scores."""
    if not scores:
        return "-"
    return " / ".join(_number(scores[metric], _DIGITS[metric]) for metric in metrics)


def _table(title: str, caption: str, columns: list[str]):
    from rich.table import Table

    table = Table(title=title, caption=caption)
    for index, column in enumerate(columns):
        table.add_column(column, justify="left" if index == 0 else "right")
    return table


def _bold_best_psnr(cells: list[str], scores: list[dict | None], best: list[float | None]) -> list[str]:
    return [f"[bold]{text}[/bold]" if score and score["psnr"] == top else text
            for text, score, top in zip(cells, scores, best)]


def _best_psnr(summary: dict, columns: list[str]) -> list[float | None]:
    return [max((row[c]["psnr"] for row in summary.values() if c in row), default=None) for c in columns]


def print_photo_table(report) -> None:
    from sscn.train.evaluate import KIND_TITLES

    summary = report.summary()
    columns = [c for c in ("tps", "rr", "rc", "palette", "mean") if any(c in row for row in summary.values())]
    best = _best_psnr(summary, columns)
    photos = report.settings["photos"]
    table = _table(f"self-augmentation benchmark: {photos} photo{'' if photos == 1 else 's'} at "
                   f"{report.settings['size']}², {CELL_TITLE}",
                   "mean = mean of TPS, RR, RC (paper Table 1); HIS against the reference",
                   ["method", *(KIND_TITLES[c] for c in columns)])
    for method, row in summary.items():
        scores = [row.get(c) for c in columns]
        table.add_row(method, *_bold_best_psnr([cell(s) for s in scores], scores, best))
    out = console()
    out.print(table)
    out.print(f"{len(report.scores) // max(1, len(report.methods))} pairs in {report.elapsed_s:.1f} s")


def print_pairs_table(report) -> None:
    summary = report.summary()
    pairs = len(report.scores) // max(1, len(report.methods))
    table = _table(f"real references: {pairs} pairs, targets at short side {report.settings['size']}",
                   "means over all pairs; colourfulness = result / truth (below 1: washed out); HIS against the "
                   "reference", ["method", "PSNR (dB)", "SSIM", "ΔE00", "colourfulness", "HIS"])
    best = _best_psnr(summary, ["mean"])
    for method, row in summary.items():
        scores = row["mean"]
        cells = [cell(scores, (metric,)) for metric in CELL_METRICS]
        table.add_row(method, *_bold_best_psnr(cells[:1], [scores], best), *cells[1:])
    out = console()
    out.print(table)
    kinds = report.kinds
    if kinds:
        by_kind = _table("per kind: PSNR (dB) / ΔE00", "", ["method", *kinds])
        best = _best_psnr(summary, kinds)
        for method, row in summary.items():
            scores = [row[kind] for kind in kinds]
            by_kind.add_row(method, *_bold_best_psnr([cell(s, ("psnr", "de00")) for s in scores], scores, best))
        out.print(by_kind)
    out.print(f"{pairs} pairs in {report.elapsed_s:.1f} s")


def print_video_table(report) -> None:
    settings = report.settings
    cdc_source = _number(report.cdc["source"], 6)
    table = _table(f"video: {settings['frames']} frames, reference: {settings['reference']}",
                   f"flicker = frame-to-frame ab change of the result / of the source (1 = as steady); CDC of the "
                   f"source: {cdc_source} (lower = steadier colours)",
                   ["method", "PSNR (dB)", "SSIM", "ΔE00", "colourfulness", "HIS", "flicker", "CDC"])
    for method, row in report.summary().items():
        table.add_row(method, *(cell(row, (metric,)) for metric in CELL_METRICS), _number(row["flicker"], 2),
                      _number(row["cdc"], 6))
    out = console()
    out.print(table)
    if report.gaps:
        gaps = _table(f"keyframe {settings['keyframe']} (frame {settings['keyframe_frame']}) as the reference: "
                      "frames after it, PSNR (dB) / ΔE00 / colourfulness", "",
                      ["method", *(f"+{label} (frame {index})" for label, index in report.gaps.items())])
        for method, row in report.gap_summary().items():
            gaps.add_row(method, *(cell(row.get(label), ("psnr", "de00", "colorfulness_ratio"))
                                   for label in report.gaps))
        out.print(gaps)
    out.print(f"evaluated in {report.elapsed_s:.1f} s")
