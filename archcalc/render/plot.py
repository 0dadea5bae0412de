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

    figure, (forward, backward) = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    for scheme in PLOTTED:
        p = propagate(analysis, scheme)
        depths = [layer.depth for layer in p.layers]
        # "recommended" often coincides with another scheme: draw it wide and dashed underneath
        style = (
            {"linestyle": "--", "linewidth": 4, "alpha": 0.5, "zorder": 1}
            if scheme == "recommended"
            else {"marker": ".", "zorder": 2}
        )
        forward.plot(depths, [layer.forward for layer in p.layers], label=scheme, **style)
        backward.plot(depths, [layer.backward for layer in p.layers], label=scheme, **style)
    for axis, title in ((forward, "forward: pre-activation variance"),
                        (backward, "backward: gradient variance at the layer's input")):  # fmt: skip
        axis.set_yscale("log")
        axis.axhspan(*HEALTHY, color="0.92", zorder=0)
        axis.set_title(title)
        axis.set_xlabel("depth (weighted layer)")
        axis.grid(True, which="major", alpha=0.4)
    forward.set_ylabel("predicted variance (input and output gradient: 1)")
    backward.legend(fontsize=8)
    figure.suptitle(f"{analysis.spec.name}: predicted variance by initialisation scheme")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=110)
    except OSError as err:
        raise ArchcalcError(f"cannot write plot: {err.strerror or err}", file=path) from None
    finally:
        plt.close(figure)
