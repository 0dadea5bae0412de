"""Real data for training checks, fitted to a spec's input shape. Nothing is downloaded.

Sources: ``digits`` (scikit-learn's bundled handwritten digits: 1,797 real
8x8 scans, 10 classes), a folder with one sub-folder of images per class, or
an ``.npz`` file with arrays ``x`` (N, ...) and ``y`` (N,). Images are
resized bilinearly to the spec's spatial size and channel-replicated; flat
inputs take the flattened image (resized to a square first if needed).
Values are scaled to [0, 1] by the training set's maximum; the split into
train and test (80/20) is a fixed permutation by ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from archcalc.errors import ArchcalcError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".pgm"}


@dataclass
class Dataset:
    """Train/test tensors fitted to a spec's input, and the number of classes."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: int


def load(source: str, input_shape: tuple, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Load ``source`` and fit it to ``input_shape`` (channels first, no batch)."""
    if source == "digits":
        images, labels = digits()
        images, name = images[:, None], "digits"  # (N, 1, 8, 8)
    else:
        path = Path(source)
        if path.suffix == ".npz":
            images, labels = _from_npz(path)
        elif path.is_dir():
            images, labels = _from_folder(path)
        else:
            raise ArchcalcError("expected 'digits', a folder of class folders or an .npz file",
                                file=source)  # fmt: skip
        name = path.name
    x = fit(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), tuple(input_shape))
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    split = int(round(len(x) * (1 - test_fraction)))
    # Pixel values to [0, 1] by the training set's largest magnitude (digits: x/16), the usual
    # convention for images; it is also the set-up of the He et al. 2015 reproduction.
    x = x / x[:split].abs().max().clamp_min(1e-8)
    return Dataset(name, x[:split], y[:split], x[split:], y[split:], int(y.max()) + 1)


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's handwritten digits: images (1797, 8, 8) as float32 and labels.

    Read from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``: one row
    per scan, 64 pixel values then the label) without importing scikit-learn, whose import
    takes 1-2 s of a two-second verify's start-up; ``load_digits()`` where the file is not
    there."""
    import gzip
    import importlib.util

    found = importlib.util.find_spec("sklearn")  # locates the package without running it
    if found is not None and found.submodule_search_locations:
        for folder in found.submodule_search_locations:
            path = Path(folder) / "datasets" / "data" / "digits.csv.gz"
            if path.is_file():
                with gzip.open(path, "rt") as handle:
                    table = np.loadtxt(handle, delimiter=",")
                return table[:, :-1].reshape(-1, 8, 8).astype(np.float32), table[:, -1].astype(int)
    from sklearn.datasets import load_digits

    loaded = load_digits()
    return loaded.images.astype(np.float32), loaded.target


def fit(images: torch.Tensor, shape: tuple) -> torch.Tensor:
    """(N, C, H, W) (or (N, H, W)) images -> (N, *shape)."""
    if images.dim() == 3:
        images = images[:, None]
    if images.dim() != 4:
        raise ArchcalcError(
            f"expected images of shape (N, C, H, W). Received: {tuple(images.shape)}"
        )
    n, channels = images.shape[:2]
    if len(shape) == 3:
        out = F.interpolate(images, size=tuple(int(v) for v in shape[1:]), mode="bilinear",
                            align_corners=False)  # fmt: skip
        return _channels(out, channels, int(shape[0]))
    if len(shape) == 1:
        features = int(shape[0])
        if features == images[0].numel():
            return images.reshape(n, -1)
        side = math.isqrt(features // channels)
        if side * side * channels != features:
            raise ArchcalcError(
                f"cannot fit {channels}x{images.shape[2]}x{images.shape[3]} images to input "
                f"[{features}]: it is not channels x a square"
            )
        out = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
        return out.reshape(n, -1)
    if len(shape) == 2:
        flat = images.reshape(n, channels, -1)
        out = F.interpolate(flat, size=int(shape[1]), mode="linear", align_corners=False)
        return _channels(out, channels, int(shape[0]))
    raise ArchcalcError(
        f"verify's data loader supports inputs [F], [C, L] and [C, H, W]. Received: {list(shape)}"
    )


def _channels(x: torch.Tensor, have: int, want: int) -> torch.Tensor:
    if have == want:
        return x
    if have == 1:
        return x.expand(-1, want, *x.shape[2:]).contiguous()
    raise ArchcalcError(f"cannot map {have}-channel images to {want} input channels")


def _from_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return archive["x"].astype(np.float32), archive["y"].astype(np.int64)
    except KeyError:
        raise ArchcalcError("an .npz data file needs arrays 'x' and 'y'", file=str(path)) from None
    except (OSError, ValueError) as err:
        raise ArchcalcError(f"cannot read data: {err}", file=str(path)) from None


def _from_folder(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    classes = sorted(p for p in path.iterdir() if p.is_dir())
    if not classes:
        raise ArchcalcError("expected one sub-folder of images per class", file=str(path))
    images, labels = [], []
    size = None
    for label, folder in enumerate(classes):
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            image = Image.open(file).convert("L")
            size = size or image.size
            images.append(np.asarray(image.resize(size), dtype=np.float32))
            labels.append(label)
    if not images:
        raise ArchcalcError("no images found in the class folders", file=str(path))
    return np.stack(images)[:, None], np.asarray(labels)
