"""The `archcalc conventions` table: each tool's figure, its difference and the reasons."""

from __future__ import annotations

from archcalc.quantities.conventions import Figure


def _signed(value: int) -> str:
    return f"{value:+,}"


def reasons(figure: Figure) -> str:
    """``batch norm 22,227,968 (2 per input element) + ReLU ...``; ``=`` when there are none."""
    if not figure.because:
        return "same convention"
    parts = []
    for share in figure.because:
        count = f"{share.count:,}" if share.count >= 0 else f"({share.count:,})"
        parts.append(f"{share.type} {count} ({share.rule})")
    return " + ".join(parts)


def conventions_table(name: str, macs: int, figures: list[Figure]) -> str:
    lines = [f"{name}: archcalc MACs {macs:,} (batch 1; the figure each tool prints, rebuilt "
             "from the spec)", ""]  # fmt: skip
    header = ["Tool", "Version", "Figure", "Difference", "Because"]
    rows = []
    for figure in figures:
        if figure.value is None:
            shown = f"partial {figure.known:,}" if figure.known is not None else "none"
            difference = _signed(figure.known - macs) if figure.known is not None else "--"
            because = f"{figure.reason}; " * (figure.known is not None) + reasons(figure)
            if figure.known is None:
                because = figure.reason or ""
        else:
            shown, difference = f"{figure.value:,}", _signed(figure.difference or 0)
            because = reasons(figure)
        rows.append([figure.tool, figure.version or "--", shown, difference, because])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                 row[3].rjust(widths[3])]  # fmt: skip
        lines.append("  ".join([*cells, row[4]]).rstrip())
    return "\n".join(lines) + "\n"
