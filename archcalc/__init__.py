"""archcalc: exact layer arithmetic for neural-network architecture specs.

>>> import archcalc
>>> a = archcalc.analyze("specs/atari_dqn.yaml") if False else None
"""

from archcalc.analysis import Analysis, Row, analyze
from archcalc.errors import ArchcalcError, SpecWarning
from archcalc.loader import load_spec
from archcalc.spec import Spec

__version__ = "0.1.0"
__all__ = ["Analysis", "ArchcalcError", "Row", "Spec", "SpecWarning", "analyze", "load_spec"]
