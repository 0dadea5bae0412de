"""Neural style transfer sizes (Gatys et al.): feature maps, Gram matrices, normalisers.

For a layer l with N_l filters and M_l = H_l·W_l positions, the feature map
F^l is N_l x M_l, the Gram matrix ``G^l = F^l (F^l)^T`` is N_l x N_l, the style
term ``E_l = 1/(4 N_l² M_l²) Σ_ij (G^l_ij - A^l_ij)²`` and the content term
``E_content = ½ Σ_ik (F^l_ik - P^l_ik)²`` sums N_l·M_l squared differences.
Layers are named as in the spec, or by position as ``conv<stage>_<index>``
(stages delimited by pooling layers), as in VGG-19's conv1_1 ... conv5_4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archcalc.errors import ArchcalcError
from archcalc.language import expr
from archcalc.language.expr import product, to_text
from archcalc.quantities.analysis import Analysis, Row


@dataclass(frozen=True)
class StyleLayer:
    role: str  # content | style
    name: str
    row: Row
    filters: Any  # N_l
    positions: Any  # M_l = H_l·W_l

    @property
    def gram(self) -> Any:
        return self.filters * self.filters

    @property
    def normaliser(self) -> Any:
        """1/(4 N_l² M_l²)."""
        denominator = 4 * self.filters**2 * self.positions**2
        if isinstance(denominator, int):
            from fractions import Fraction

            return Fraction(1, denominator)
        return 1 / denominator

    @property
    def content_terms(self) -> Any:
        return self.filters * self.positions

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "layer": self.name, "path": self.row.path,
                "filters": _json(self.filters), "positions": _json(self.positions),
                "gram": _json(self.gram), "normaliser": _json(self.normaliser),
                "content_terms": _json(self.content_terms)}  # fmt: skip


def _json(value: Any) -> Any:
    if isinstance(value, int):
        return value
    if type(value).__name__ == "Fraction":
        return str(value)
    return to_text(value)


def positional_names(analysis: Analysis) -> dict[str, Row]:
    """``conv<stage>_<index>`` for every convolution; a pooling layer starts a new stage."""
    names: dict[str, Row] = {}
    stage, index = 1, 0
    for row in analysis.rows:
        if "pool" in row.type and not row.type.startswith("adaptive"):
            stage, index = stage + 1, 0
        elif row.type.startswith("conv") and not row.type.startswith("conv_transpose"):
            index += 1
            names[f"conv{stage}_{index}"] = row
    return names


def find(analysis: Analysis, name: str) -> Row:
    for row in analysis.rows:
        if name in (row.path, row.name):
            return row
    positional = positional_names(analysis)
    if name in positional:
        return positional[name]
    known = ", ".join(list(positional)[:6])
    raise ArchcalcError(f"no layer {name!r} (by path, name or position such as {known} ...)")


def style_layers(analysis: Analysis, content: list[str], style: list[str]) -> list[StyleLayer]:
    """The content and style layers with their sizes."""
    found = []
    for role, names in (("content", content), ("style", style)):
        for name in names:
            row = find(analysis, name)
            if len(row.output) < 2:
                raise ArchcalcError(
                    f"{name} ({row.path}) has no spatial positions: output {list(row.output)}"
                )
            found.append(
                StyleLayer(role, name, row, row.output[0], expr.simplify(product(row.output[1:])))
            )
    return found


def _fmt(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    if type(value).__name__ == "Fraction":
        return f"1/{value.denominator:,} = {float(value):.3e}"
    return to_text(value)


def render(analysis: Analysis, layers: list[StyleLayer]) -> str:
    header = [
        "layer",
        "role",
        "path",
        "N_l",
        "M_l = H_l·W_l",
        "Gram N_l×N_l",
        "1/(4 N_l² M_l²)",
        "content N_l·M_l",
    ]
    body = []
    for layer in layers:
        h_w = "·".join(to_text(v) for v in layer.row.output[1:])
        positions = (
            f"{h_w} = {_fmt(layer.positions)}"
            if isinstance(layer.positions, int)
            else _fmt(layer.positions)
        )
        style = layer.role == "style"
        body.append([layer.name, layer.role, layer.row.path, _fmt(layer.filters), positions,
                     f"{_fmt(layer.filters)}×{_fmt(layer.filters)}" if style else "--",
                     _fmt(layer.normaliser) if style else "--",
                     _fmt(layer.content_terms) if not style else "--"])  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [
        f"style transfer sizes: {analysis.spec.name}, input {'×'.join(to_text(v) for v in analysis.input)}",
        "",
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *body]]
    lines += ["", "E_style = ¼ Σ_l w_l/(N_l² M_l²) Σ_ij (G^l_ij − A^l_ij)²,  G^l = F^l F^l^T",
              "E_content = ½ Σ_ik (F^l_ik(x) − F^l_ik(x_c))²;  E_total = α E_content + β E_style"]  # fmt: skip
    return "\n".join(lines) + "\n"
