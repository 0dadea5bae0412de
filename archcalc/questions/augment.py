"""Data augmentation by cropping and flipping: how many distinct training patches, and why
AlexNet's paper says "a factor of 2048".

Krizhevsky et al. (2012) train on random 224×224 patches of 256×256 images and their
horizontal reflections. A crop of c from n can start at n - c + 1 offsets per axis (0 ..
n - c), so there are (n - c + 1)² positions, times 2 with flips: 33 × 33 × 2 = 2,178. The
paper's factor 2048 = 32 × 32 × 2 counts offsets 0 .. 31, i.e. (n - c)² positions, leaving
out the last start of each axis. At test time the paper averages ten patches: the four
corners and the centre, each with its reflection.

>>> a = augmentation((256, 256), (224, 224), flip=True)
>>> a.patches, a.paper_factor, a.test_patches
(2178, 2048, 10)
"""

from __future__ import annotations

from dataclasses import dataclass

from archcalc.errors import ArchcalcError


@dataclass(frozen=True)
class Augmentation:
    image: tuple[int, int]
    crop: tuple[int, int]
    flip: bool

    @property
    def offsets(self) -> tuple[int, int]:
        """Start positions per axis: n - c + 1 (0 .. n - c)."""
        return tuple(n - c + 1 for n, c in zip(self.image, self.crop))

    @property
    def flips(self) -> int:
        return 2 if self.flip else 1

    @property
    def patches(self) -> int:
        """Distinct training patches: positions × reflections."""
        return self.offsets[0] * self.offsets[1] * self.flips

    @property
    def paper_factor(self) -> int:
        """(n - c)² × reflections: the count that leaves out the last offset per axis (AlexNet's 2048)."""
        return (self.image[0] - self.crop[0]) * (self.image[1] - self.crop[1]) * self.flips

    @property
    def test_patches(self) -> int:
        """Ten-crop testing: four corners and the centre, each also reflected (5 without flips)."""
        return 5 * self.flips

    def to_dict(self) -> dict:
        return {"image": list(self.image), "crop": list(self.crop), "flip": self.flip,
                "offsets": list(self.offsets), "patches": self.patches,
                "paper_factor": self.paper_factor, "test_patches": self.test_patches}  # fmt: skip

    def explain(self) -> str:
        (n1, n2), (c1, c2), f = self.image, self.crop, self.flips
        o1, o2 = self.offsets
        flip = f" × {f} (horizontal reflections)" if self.flip else ""
        lines = [
            f"random {c1}×{c2} crops of {n1}×{n2} images"
            + (" and their reflections" if self.flip else ""),
            f"  offsets per axis   = n - c + 1 = {n1} - {c1} + 1 = {o1}"
            + ("" if (n1, c1) == (n2, c2) else f"; {n2} - {c2} + 1 = {o2}")
            + f" (a crop starts at 0 .. {n1 - c1})",
            f"  distinct patches   = {o1} × {o2}{flip} = {self.patches:,}",
            f"  (n - c)²·flips     = {n1 - c1} × {n2 - c2}{flip} = {self.paper_factor:,}: the count "
            "that leaves out the last offset per axis; AlexNet's paper calls its augmentation "
            '"a factor of 2048" this way (256 → 224 with reflections)',
            f"  ten-crop testing   = 5 patches (4 corners + centre){flip} = {self.test_patches}",
        ]
        return "\n".join(lines) + "\n"


def augmentation(image: tuple[int, int], crop: tuple[int, int], flip: bool = False) -> Augmentation:
    """Crops of ``crop`` from images of ``image`` (height, width), with reflections if ``flip``."""
    if any(c < 1 for c in crop) or any(c > n for n, c in zip(image, crop)):
        raise ArchcalcError(f"the crop must fit the image: expected 1 <= crop <= image. Received: "
                            f"image={list(image)}, crop={list(crop)}")  # fmt: skip
    return Augmentation(tuple(image), tuple(crop), flip)
