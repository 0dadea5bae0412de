"""A tiny vector canvas: rectangles, lines, arrows and text, written as SVG (no dependency)
or PNG (through matplotlib, the [plot] extra). The pictures of `archcalc draw` are built on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from archcalc.errors import ArchcalcError


@dataclass
class Canvas:
    width: float
    height: float
    items: list[tuple] = field(default_factory=list)

    def rect(self, x: float, y: float, w: float, h: float, fill: str = "none", stroke: str = "#333",
             width: float = 1.0, dash: bool = False, opacity: float = 1.0) -> None:  # fmt: skip
        self.items.append(("rect", x, y, w, h, fill, stroke, width, dash, opacity))

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str = "#333",
             width: float = 1.0, arrow: bool = False, dash: bool = False) -> None:  # fmt: skip
        self.items.append(("line", x1, y1, x2, y2, stroke, width, arrow, dash))

    def text(self, x: float, y: float, text: str, size: float = 12, anchor: str = "middle",
             colour: str = "#222", bold: bool = False) -> None:  # fmt: skip
        self.items.append(("text", x, y, text, size, anchor, colour, bold))
        # grow to fit: a character is about 0.6 em wide in the sans fonts used
        extent = len(text) * size * 0.6 * {"start": 1.0, "middle": 0.5, "end": 0.0}[anchor]
        self.width = max(self.width, x + extent + 16)
        self.height = max(self.height, y + size)

    # -- SVG

    def svg(self) -> str:
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width:.0f}" height="{self.height:.0f}" '
               f'viewBox="0 0 {self.width:.0f} {self.height:.0f}" font-family="DejaVu Sans, Arial, sans-serif">',
               '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
               'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/>'
               "</marker></defs>",
               f'<rect x="0" y="0" width="{self.width:.0f}" height="{self.height:.0f}" fill="white"/>']  # fmt: skip
        for item in self.items:
            kind = item[0]
            if kind == "rect":
                _, x, y, w, h, fill, stroke, width, dash, opacity = item
                extra = ' stroke-dasharray="4 3"' if dash else ""
                out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{fill}" '
                           f'fill-opacity="{opacity}" stroke="{stroke}" stroke-width="{width}"{extra}/>')  # fmt: skip
            elif kind == "line":
                _, x1, y1, x2, y2, stroke, width, arrow, dash = item
                extra = ' marker-end="url(#arrow)"' if arrow else ""
                extra += ' stroke-dasharray="4 3"' if dash else ""
                out.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                           f'stroke="{stroke}" stroke-width="{width}"{extra}/>')  # fmt: skip
            else:
                _, x, y, text, size, anchor, colour, bold = item
                weight = ' font-weight="bold"' if bold else ""
                out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                           f'fill="{colour}"{weight}>{escape(text)}</text>')  # fmt: skip
        out.append("</svg>")
        return "\n".join(out) + "\n"

    # -- PNG

    def png(self, path: str, dpi: int = 100) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            from matplotlib.patches import FancyArrowPatch, Rectangle
        except ImportError:
            raise ArchcalcError(
                "PNG needs matplotlib: pip install 'archcalc[plot]' (SVG needs nothing)"
            ) from None
        figure = plt.figure(figsize=(self.width / dpi, self.height / dpi), dpi=dpi)
        axis = figure.add_axes((0, 0, 1, 1))
        axis.set_xlim(0, self.width)
        axis.set_ylim(self.height, 0)
        axis.axis("off")
        for item in self.items:
            kind = item[0]
            if kind == "rect":
                _, x, y, w, h, fill, stroke, width, dash, opacity = item
                axis.add_patch(Rectangle((x, y), w, h, facecolor="none" if fill == "none" else fill,
                                         alpha=None, edgecolor=stroke, linewidth=width * 0.75,
                                         linestyle="--" if dash else "-"))  # fmt: skip
                if fill != "none" and opacity < 1:
                    axis.patches[-1].set_facecolor((*matplotlib.colors.to_rgb(fill), opacity))
            elif kind == "line":
                _, x1, y1, x2, y2, stroke, width, arrow, dash = item
                axis.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>" if arrow else "-",
                                               mutation_scale=10, color=stroke, linewidth=width * 0.75,
                                               linestyle="--" if dash else "-"))  # fmt: skip
            else:
                _, x, y, text, size, anchor, colour, bold = item
                axis.text(x, y, text, fontsize=size * 0.75, color=colour, ha={"middle": "center", "start": "left", "end": "right"}[anchor],
                          va="baseline", fontweight="bold" if bold else "normal")  # fmt: skip
        try:
            figure.savefig(path, dpi=dpi)
        except OSError as err:
            raise ArchcalcError(f"cannot write picture: {err.strerror or err}", file=path) from None
        finally:
            plt.close(figure)

    def write(self, path: str) -> None:
        """SVG or PNG by the file's extension."""
        if path.lower().endswith(".png"):
            self.png(path)
            return
        if not path.lower().endswith(".svg"):
            raise ArchcalcError(f"expected a file name ending in .svg or .png. Received: {path}")
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(self.svg())
        except OSError as err:
            raise ArchcalcError(f"cannot write picture: {err.strerror or err}", file=path) from None
