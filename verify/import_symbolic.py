"""``archcalc import --symbolic H,W``: an imported spec whose input sizes are symbols.

A trace records one run of the module, so every size in it is a number. Most sizes come
from the module's own configuration (channels, kernels, an adaptive pool's output) and
hold for any input; some come from the input (a ``view`` to ``h // 16 * w // 16`` tokens,
an ``interpolate`` to a fixed size, a position embedding sized for one resolution), and a
spec that kept those as numbers would answer wrongly at any other size.

So the module is imported a second time at another size, and the two specs compared. Where
nothing but the input differs, the spec holds at both sizes: its input becomes the symbols,
with the example's sizes as their defaults. Where an item differs, the importer cannot write
it as a formula of the input, and says which item and field, with both values; where the
module does not run at the other size at all, it says that. Two sizes cannot rule out every
size-dependent number, but a size copied from the input, the usual case, always shows.
"""

from __future__ import annotations

from typing import Any, Callable

from archcalc.errors import ArchcalcError
from archcalc.language import expr

#: A second size keeps the example's divisibility by powers of two up to this (a stride-32
#: network, or a U-Net whose skips must line up, runs at 224 + 32 as it does at 224).
_STEP_CAP = 64


def parse_names(text: str | list[str] | tuple[str, ...], shape: tuple[int, ...]) -> list[str]:
    """The symbol names for the input's trailing dimensions (``H,W`` for ``3,224,224``).

    >>> parse_names("H,W", (3, 224, 224))
    ['H', 'W']
    """
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else list(text)
    if not names or len(names) > len(shape):
        raise ArchcalcError(
            f"--symbolic names up to {len(shape)} trailing input dimensions, one name each. "
            f"Received: --symbolic {','.join(names)} for an input of {len(shape)} dimensions"
        )
    for name in names:
        if not name.isidentifier() or name in expr.RESERVED_NAMES or name in ("input", "batch"):
            raise ArchcalcError(f"--symbolic: {name!r} cannot name a symbol (a plain name, not "
                                "a reserved one such as C_in, max or input)")  # fmt: skip
    if len(set(names)) != len(names):
        raise ArchcalcError(f"--symbolic: each name once. Received: {','.join(names)}")
    return names


def other_size(shape: tuple[int, ...], count: int) -> tuple[int, ...]:
    """The example's shape with its last ``count`` sizes grown by their largest power-of-two
    divisor (capped at 64): 224 -> 256, 299 -> 300, 28 -> 32.

    >>> other_size((3, 224, 224), 2), other_size((3, 299, 299), 2)
    ((3, 256, 256), (3, 300, 300))
    """
    grown = [n + min(n & -n, _STEP_CAP) if n > 0 else 1 for n in shape[len(shape) - count :]]
    return (*shape[: len(shape) - count], *grown)


def _text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def _difference(a: Any, b: Any, where: str) -> tuple[str, Any, Any] | None:
    """The first place two spec fragments differ: (path, value here, value there)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            missing = next(k for k in [*a, *b] if k not in a or k not in b)
            return f"{where}.{missing}", a.get(missing), b.get(missing)
        for key in a:
            found = _difference(a[key], b[key], f"{where}.{key}" if where else str(key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            named = f" ({x['name']})" if isinstance(x, dict) and "name" in x else ""
            found = _difference(x, y, f"{where}[{i}]{named}")
            if found:
                return found
        return None
    return None if a == b else (where, a, b)


def make_symbolic(spec: dict[str, Any], shape: tuple[int, ...], names: list[str],
                  again: Callable[[tuple[int, ...]], dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """``spec`` (imported at ``shape``) with its last input sizes made ``names``, after
    ``again(other_shape)`` (the same import at another size) showed nothing else depends on
    them; else an ArchcalcError naming the first item that does."""
    other = other_size(shape, len(names))
    try:
        there = again(other)
    except ArchcalcError as err:
        raise ArchcalcError(
            f"--symbolic {','.join(names)}: the module does not import at {_text(other)} "
            f"({err}); it takes only its example's size: import it without --symbolic"
        ) from None
    except Exception as err:  # the module's own forward refused the size
        first = next((line for line in str(err).splitlines() if line.strip()), "")
        raise ArchcalcError(
            f"--symbolic {','.join(names)}: the module does not run at {_text(other)} "
            f"({type(err).__name__}: {first}); it takes only its example's size: import it "
            "without --symbolic"
        ) from None
    ignored = ("input", "description")
    here_part = {k: v for k, v in spec.items() if k not in ignored}
    there_part = {k: v for k, v in there.items() if k not in ignored}
    found = _difference(here_part, there_part, "")
    if found is not None:
        path, a, b = found
        raise ArchcalcError(
            f"--symbolic {','.join(names)}: {path} is {a!r} at {_text(shape)} but {b!r} at "
            f"{_text(other)}: it depends on the input size in a way the importer cannot write "
            "as a formula; import at a fixed size (without --symbolic)"
        )
    result: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "input":
            result["symbols"] = dict(zip(names, shape[len(shape) - len(names) :]))
            result["input"] = [*shape[: len(shape) - len(names)], *names]
        elif key == "description":
            result[key] = (f"{value}; input sizes {', '.join(names)} symbolic (the same spec "
                           f"imported at {_text(shape)} and {_text(other)})")  # fmt: skip
        else:
            result[key] = value
    return result
