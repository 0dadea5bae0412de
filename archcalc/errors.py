"""The one error type of archcalc, and the warning record.

Low-level code states the fact ("output size 0 < 1 ..."); the public entry
points add where it happened (file, spec path such as ``layers[3].stride``).
"""

from __future__ import annotations

from dataclasses import dataclass


class ArchcalcError(Exception):
    """An invalid spec, expression or request.

    ``str(err)`` is the complete one-line message: ``FILE: PATH: message``.

    >>> str(ArchcalcError("expected an integer >= 1. Received: stride=0", path="layers[3].stride"))
    'layers[3].stride: expected an integer >= 1. Received: stride=0'
    """

    def __init__(self, message: str, *, path: str | None = None, file: str | None = None,
                 line: int | None = None, name: str | None = None):  # fmt: skip
        super().__init__(message)
        self.message = message
        self.path = path
        self.file = file
        #: 1-based line of the layer item in its YAML file, and the item's name, where known.
        self.line = line
        self.name = name
        #: Further problems found in the same pass (validation reports them all at once).
        self.others: list[ArchcalcError] = []

    def at(self, path: str | None = None, file: str | None = None, *, line: int | None = None,
           name: str | None = None) -> ArchcalcError:  # fmt: skip
        """Fill in the location if it is not known yet (innermost wins); returns self."""
        if self.path is None and path:
            self.path = path
        if self.line is None and line:
            self.line = line
        if self.name is None and name:
            self.name = name
        for other in self.others:
            other.at(file=file)
        if self.file is None and file:
            self.file = file
        return self

    def location(self) -> str:
        """``file:line: path (name)``, as much of it as is known.

        >>> ArchcalcError("m", path="layers[2].in_features", file="n.yaml", line=6, name="fc1").location()
        'n.yaml:6: layers[2].in_features (fc1)'
        """
        head = self.file or ""
        if self.line is not None:
            head = f"{head}:{self.line}" if head else f"line {self.line}"
        where = [part for part in (head, self.path) if part]
        text = ": ".join(where)
        if self.name and self.path:
            text += f" ({self.name})"
        return text

    def lines(self) -> list[str]:
        """One line per problem: this one, then the others."""
        own = ": ".join(part for part in (self.location(), self.message) if part)
        return [own] + [line for other in self.others for line in other.lines()]

    def __str__(self) -> str:
        return "\n".join(self.lines())


@dataclass(frozen=True)
class SpecWarning:
    """Something legal but suspicious, tied to a spec path."""

    path: str
    message: str
    #: "padding" for a stride that leaves only padding unused (collapsed in summaries).
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
