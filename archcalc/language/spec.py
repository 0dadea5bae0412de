"""The spec language: a network is a frozen pydantic model.

Field names follow ``torch.nn``; the layer types are in
:mod:`archcalc.language.layer_types`, the field types in
:mod:`archcalc.language.fields`. This module holds the top of the document
(name, symbols, input, blocks, layers, outputs) and re-exports what the rest of
archcalc imports from the language.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

from pydantic import Field, PrivateAttr

from archcalc.language import expr
from archcalc.language.fields import (
    ACTIVATION_TYPES,
    FIELD_MINIMUM,
    IntExpr,
    Model,
    SymbolName,
    TensorName,
    item_check,
    suggest,
)
from archcalc.language.layer_types import (
    BUILTIN_TYPES,
    LAYER_CLASSES,
    UNION_TAGS,
    AnyLayer,
    Approx,
    LayerExpect,
)

__all__ = [
    "ACTIVATION_TYPES", "BUILTIN_TYPES", "FIELD_MINIMUM", "LAYER_CLASSES", "UNION_TAGS", "Block",
    "Spec", "SpecExpect", "suggest",
]  # fmt: skip

LayerList = list[AnyLayer]


class OutputExpect(LayerExpect):
    """Expected values for one output: sums over the layers it depends on."""

    weights_per_neuron: None = Field(None, description="Not applicable to a whole network.")
    flops: Optional[Approx | IntExpr(0)] = Field(None, description="2 x MACs.")


class SpecExpect(OutputExpect):
    """Expected values for the whole network (and, under ``outputs``, for single outputs:
    Inception-v3's published GFLOPS are its main output's, its parameters both heads')."""

    outputs: Optional[dict[TensorName, OutputExpect]] = Field(
        None, description="Per output name: its shape and the sums over the layers it needs."
    )


class Block(Model):
    """A user-defined layer type: a layer list with named parameters."""

    description: Optional[str] = Field(None, description="What the block is.")
    params: list[SymbolName] = Field(
        default_factory=list,
        description="Parameter names, usable as symbols inside the block (or, in `activation:` "
        "fields, as an activation name).",
    )
    layers: LayerList = Field(min_length=1, description="The block's layers.")


class SpecSource(Model):
    """Where an imported spec came from, so that verify can check it computes the same."""

    module: str = Field(description="`package.module:callable` or `path/file.py:callable`.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments of the callable.")
    method: Optional[str] = Field(None, description="How it was traced.")
    training: bool = Field(False, description="Traced in training mode (auxiliary heads).")
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description="Item name -> the module (or attribute) path its weights come from.",
    )


class Published(Model):
    """A figure a paper or a slide gives for the network, in its own words: `explain` says
    which of archcalc's totals (conventions) it matches, or that it matches none."""

    value: float = Field(gt=0, description="The figure, e.g. 6.3e8 for '630 million'.")
    says: str = Field(description="What the source calls it, e.g. 'connections'.")
    source: Optional[str] = Field(None, description="Where it is published.")
    digits: Optional[int] = Field(
        None, ge=1, le=15,
        description="Significant digits it was given with (default: those of the value).",
    )  # fmt: skip


class Spec(Model):
    """A network: input shape, layers, and optionally blocks and named outputs."""

    name: str = Field(description="Name of the network.")
    description: Optional[str] = Field(None, description="Free text.")
    symbols: dict[
        SymbolName, Optional[Annotated[int, Field(strict=True, ge=0, le=expr.MAX_VALUE)]]
    ] = Field(
        default_factory=dict,
        description="Names usable in expressions: an int (>= 0) is a default value, null a free symbol (a positive integer).",
    )
    input: list[IntExpr()] = Field(
        min_length=1, max_length=4, description="Input shape, channels first, no batch."
    )
    expect: Optional[SpecExpect] = Field(None, description="Expected totals, checked by `check`.")
    blocks: dict[SymbolName, Block] = Field(
        default_factory=dict, description="User-defined layer types (templates)."
    )
    layers: LayerList = Field(min_length=1, description="The layers, in execution order.")
    outputs: Optional[list[TensorName]] = Field(
        None,
        min_length=1,
        description="Names of the tensors the network returns (default: the last item's output).",
    )
    source: Optional[SpecSource] = Field(
        None, description="The PyTorch module an imported spec was made from (archcalc import)."
    )
    published: list[Published] = Field(
        default_factory=list,
        description="Figures published for the network, compared by `explain` with every counting "
        "convention (not checked: use expect: for figures that must hold).",
    )
    #: id of each layer item -> the line of its YAML file where it is written (messages).
    _lines: dict[int, int] = PrivateAttr(default_factory=dict)

    _check_names = item_check("spec_references")
