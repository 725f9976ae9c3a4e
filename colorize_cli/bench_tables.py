"""The tables of `sscn bench`: on stderr (rich) and as Markdown (`--markdown`, the README's speed tables)."""
from __future__ import annotations

from .errors import stderr_is_terminal


def _title(report: dict) -> str:
    compiled = ", compiled" if report["compile"] else ""
    precisions = " and ".join(report.get("precisions", [report["precision"]]))
    return (f"sscn bench: {report['config']} ({report['weights']}), {precisions}{compiled}, "
            f"batch {report['batch_size']}, median of {report['runs']} runs")


def _caption(report: dict) -> str:
    return (f"{report['device']}, torch {report['torch']}, {report['date']}; "
            "memory: CUDA max allocated, CPU peak RSS of the process so far")


_NETWORK_COLUMNS = ["size", "mode", "positions", "ms/image", "images/s", "peak MB", "GFLOP/image", "TFLOP/s",
                    "of peak"]
_END_TO_END_COLUMNS = ["input", "kind", "files", "images", "size", "seconds", "images/s"]


def _compared(report: dict) -> bool:
    """Whether the report holds fp32 and another precision side by side (a precision column and a speed-up)."""
    return len(report.get("precisions", [])) > 1


def _speedup(row: dict, rows: list[dict], key: str) -> str:
    """Row's ms (or seconds) against the fp32 row of the same measurement, as "3.1×"."""
    same = lambda other: all(other[k] == row[k] for k in ("size", "mode", "kind") if k in row)  # noqa: E731
    fp32 = next((other for other in rows if other.get("precision") == "fp32" and same(other)), None)
    if fp32 is None or not row[key] or not fp32[key]:
        return "-"
    return f"{fp32[key] / row[key]:.2f}×"


def _network_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Column names and the cells of each network measurement, as the table and --markdown show them."""
    compiled, compared = report["compile"], _compared(report)
    columns = _NETWORK_COLUMNS[:2] + ["precision"] * compared + _NETWORK_COLUMNS[2:] + ["× fp32"] * compared \
        + ["compile s"] * compiled
    rows = []
    for row in report["network"]:
        cells = [f"{row['size']}²", row["mode"], *([row["precision"]] if compared else []), str(row["positions"])]
        if row["error"]:
            rows.append(cells + [row["error"]] + [""] * (len(columns) - len(cells) - 1))
            continue
        rows.append(cells + [
            f"{row['ms_per_image']:.2f}", f"{row['images_per_second']:.1f}",
            "-" if row["peak_memory_mb"] is None else f"{row['peak_memory_mb']:.0f}",
            f"{row['gflops_per_image']:.2f}", f"{row['achieved_tflops']:.3f}",
            "-" if row["peak_fraction"] is None else f"{100 * row['peak_fraction']:.1f} %",
            *([_speedup(row, report["network"], "ms_per_image")] if compared else []),
            *([f"{row['compile_seconds']:.1f}"] if compiled else []),
        ])
    return columns, rows


def _end_to_end_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    compared = _compared(report)
    columns = _END_TO_END_COLUMNS[:2] + ["precision"] * compared + _END_TO_END_COLUMNS[2:] + ["× fp32"] * compared
    return columns, [[row["source"], row["kind"], *([row["precision"]] if compared else []), str(row["files"]),
                      str(row["images"]), f"{row['size']}²", f"{row['seconds']:.2f}", f"{row['images_per_second']:.2f}",
                      *([_speedup(row, report["end_to_end"], "seconds")] if compared else [])]
                     for row in report["end_to_end"]]


def print_tables(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True, width=None if stderr_is_terminal() else 160)
    columns, rows = _network_rows(report)
    table = Table(title=_title(report), caption=_caption(report))
    for column in columns:
        table.add_column(column, justify="left" if column in ("mode", "precision") else "right")
    for cells in rows:
        table.add_row(*cells)
    console.print(table)
    if report["end_to_end"]:
        e2e = Table(title="sscn colorize end to end (decode, model, encode)",
                    caption="after a warm-up batch (which compiles, with --compile)")
        columns, rows = _end_to_end_rows(report)
        for column in columns:
            e2e.add_column(column, justify="left" if column in ("input", "kind", "precision") else "right")
        for cells in rows:
            e2e.add_row(*cells)
        console.print(e2e)


def markdown(report: dict) -> str:
    """The tables as Markdown, titled with the settings, device, torch version and date (for the README)."""
    def table(columns: list[str], rows: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|",
                *("| " + " | ".join(cells) + " |" for cells in rows)]

    lines = [f"{_title(report)}; {_caption(report)}.", "", *table(*_network_rows(report))]
    if report["end_to_end"]:
        lines += ["", "End to end (`sscn colorize`: decode, model, encode; after a warm-up batch):", "",
                  *table(*_end_to_end_rows(report))]
    return "\n".join(lines)
