"""torchvision for tests and benchmarks: importable here or not, never a dependency.

The torchvision wheel from the package index may be a CUDA build whose compiled
operators cannot register with the installed CPU torch; its model code is pure
Python and imports when ``torch.library.register_fake`` is a no-op during the
import. Nothing here downloads weights: models are built with ``weights=None``.
"""

from __future__ import annotations

from typing import Any


def import_torchvision() -> Any | None:
    """The torchvision module, or None where it cannot be imported."""
    try:
        import torch
    except ImportError:
        return None
    try:
        import torchvision

        return torchvision
    except Exception:  # noqa: BLE001 - any failure means: use the fallback, or skip
        pass
    register = torch.library.register_fake
    torch.library.register_fake = lambda *args, **kwargs: lambda fn: fn
    try:
        import torchvision
    except Exception:  # noqa: BLE001
        return None
    finally:
        torch.library.register_fake = register
    return torchvision


def classification_models(tv) -> list[tuple[str, Any, Any]]:
    """(name, builder, default weights enum member) of every classification model."""
    from torchvision.models import get_model_builder, get_model_weights, list_models

    found = []
    for name in list_models(module=tv.models):
        weights = get_model_weights(name)
        found.append((name, get_model_builder(name), weights.DEFAULT))
    return found
