"""Every layer type's :class:`~archcalc.layers.rules.Rule`, by type name.

The rules live with their families: :mod:`~archcalc.layers.weighted`
(convolutions, linear, attention, LeNet's subsampling and RBF),
:mod:`~archcalc.layers.pooling` (pooling, normalisation, PReLU) and
:mod:`~archcalc.layers.tensor_ops` (shape-only layers, merges, learned
tensors). Activations, dropout and identity keep the shape and count nothing.
"""

from __future__ import annotations

from archcalc.layers import pooling, tensor_ops, weighted
from archcalc.layers.rules import Answer, Note, Rule, answer, shape_text

__all__ = ["RULES", "Answer", "Note", "Rule", "answer", "rule_for", "shape_text"]

RULES: dict[str, Rule] = {**weighted.RULES, **pooling.RULES, **tensor_ops.RULES}
_SHAPE_PRESERVING = Rule()


def rule_for(layer_type: str) -> Rule:
    """The rule of a layer type (activations, dropout, identity: shape-preserving)."""
    return RULES.get(layer_type, _SHAPE_PRESERVING)
