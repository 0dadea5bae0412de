"""archcalc: exact layer arithmetic for neural-network architecture specs.

>>> import archcalc
>>> net = archcalc.analyze({
...     "name": "tiny", "input": [1, 28, 28],
...     "layers": [{"type": "conv2d", "out_channels": 6, "kernel_size": 5}],
... })
>>> net.rows[0].output, net.rows[0].connections, net.totals["params"]
((6, 24, 24), 89856, 156)
"""

from typing import TYPE_CHECKING, Any

from archcalc.errors import ArchcalcError, SpecWarning

if TYPE_CHECKING:
    from archcalc.language.loader import load_spec
    from archcalc.language.spec import Spec
    from archcalc.quantities.analysis import Analysis, Row, analyze

__version__ = "0.1.0"
__all__ = ["Analysis", "ArchcalcError", "Row", "Spec", "SpecWarning", "analyze", "load_spec"]

#: Imported on first use: `archcalc --version` and `--help` need none of it, and `Spec` (the
#: pydantic models, built when imported) is needed only for the JSON Schema, for documents the
#: fast reader hands to pydantic, and by users who ask for it.
_LAZY = {
    "load_spec": "archcalc.language.loader",
    "Spec": "archcalc.language.spec",
    "Analysis": "archcalc.quantities.analysis",
    "Row": "archcalc.quantities.analysis",
    "analyze": "archcalc.quantities.analysis",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'archcalc' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
