"""The checks a whole item must pass after its fields, by name.

The pydantic models run them as validators (``fields.item_check``) and the fast reader's
table names them, so both readers run the same functions.
"""

from __future__ import annotations

from typing import Any, Callable

from archcalc.language.references import check_references
from archcalc.language.values import activation_fields, exactly_one

ITEM_CHECKS: dict[str, Callable[[Any], None]] = {
    "size_or_scale_factor": lambda item: exactly_one(item, "size", "scale_factor"),
    "size_or_like": lambda item: exactly_one(item, "size", "like"),
    "branches_or_inputs": lambda item: exactly_one(item, "branches", "inputs"),
    "activation_fields": activation_fields,
    # names, block calls and expressions refer to what exists (raises ArchcalcError)
    "spec_references": check_references,
}
