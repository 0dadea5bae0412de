"""``archcalc init --plot``: predicted log10 variance against depth, several schemes side by side."""

from __future__ import annotations

from archcalc.errors import ArchcalcError
from archcalc.quantities.analysis import Analysis

PLOTTED = ("recommended", "kaiming", "xavier", "lecun", "torch_default")


def plot_schemes(analysis: Analysis, path: str) -> None:
    """Write a PNG with forward and backward predictions for every scheme."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ArchcalcError(
            "--plot needs matplotlib: pip install 'archcalc[plot]' (or pip install matplotlib)"
        ) from None
    from archcalc.init.propagation import HEALTHY, propagate

    figure, (forward, backward) = plt.subplots(1, 2, figsize=(13, 4.8), sharex=True)
    layers = []
    for scheme in PLOTTED:
        p = propagate(analysis, scheme)
        layers = p.layers
        depths = [layer.depth for layer in p.layers]
        # "recommended" often coincides with another scheme: draw it wide and dashed underneath
        style = (
            {"linestyle": "--", "linewidth": 4, "alpha": 0.5, "zorder": 1}
            if scheme == "recommended"
            else {"marker": ".", "zorder": 2}
        )
        forward.plot(depths, [layer.forward for layer in p.layers], label=scheme, **style)
        backward.plot(depths, [layer.backward_norm for layer in p.layers], label=scheme, **style)
    for axis, title, ylabel in (
        (forward, "forward: pre-activation variance", "variance (network input: 1)"),
        (backward, "backward: squared gradient norm at the layer's input",
         "relative to the output gradient's"),
    ):  # fmt: skip
        axis.set_yscale("log")
        axis.axhspan(*HEALTHY, color="0.92", zorder=0, label="healthy (flags)")
        axis.set_title(title, fontsize=10)
        axis.set_ylabel(ylabel)
        axis.grid(True, which="major", alpha=0.4)
        depth_ticks(axis, [(layer.depth, layer.row.name or layer.row.path) for layer in layers])
    backward.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    figure.suptitle(f"{analysis.spec.name}{values_text(analysis)}: predicted variance by "
                    "initialisation scheme")  # fmt: skip
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as err:
        raise ArchcalcError(f"cannot write plot: {err.strerror or err}", file=path) from None
    finally:
        plt.close(figure)


def depth_ticks(axis, labelled: list[tuple[int, str]], most: int = 24) -> None:
    """Integer depth ticks, labelled with the layers' names (paths where unnamed), thinned to
    at most ``most`` labels."""
    if not labelled:
        return
    step = max(1, -(-len(labelled) // most))
    shown = labelled[::step]
    axis.set_xticks([depth for depth, _ in shown])
    axis.set_xticklabels([f"{depth} {name}" if len(name) <= 28 else f"{depth} ...{name[-24:]}"
                          for depth, name in shown], rotation=90, fontsize=7)  # fmt: skip
    axis.set_xlabel("depth (weighted layer)")


def values_text(analysis: Analysis) -> str:
    """`` (S=188)``: the symbols' values in force, for titles."""
    declared = analysis.spec.symbols
    shown = [f"{name}={value}" for name, value in analysis.values.items() if name in declared]
    return f" ({', '.join(shown)})" if shown else ""
