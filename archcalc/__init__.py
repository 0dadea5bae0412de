"""archcalc: exact layer arithmetic for neural-network architecture specs.

>>> import archcalc
>>> net = archcalc.analyze({
...     "name": "tiny", "input": [1, 28, 28],
...     "layers": [{"type": "conv2d", "out_channels": 6, "kernel_size": 5}],
... })
>>> net.rows[0].output, net.rows[0].connections, net.totals["params"]
((6, 24, 24), 89856, 156)
"""

from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.language.loader import load_spec
from archcalc.language.spec import Spec
from archcalc.quantities.analysis import Analysis, Row, analyze

__version__ = "0.1.0"
__all__ = ["Analysis", "ArchcalcError", "Row", "Spec", "SpecWarning", "analyze", "load_spec"]
