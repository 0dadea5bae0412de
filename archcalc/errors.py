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

    def __init__(self, message: str, *, path: str | None = None, file: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.file = file

    def at(self, path: str | None = None, file: str | None = None) -> ArchcalcError:
        """Fill in the location if it is not known yet (innermost wins); returns self."""
        if self.path is None and path:
            self.path = path
        if self.file is None and file:
            self.file = file
        return self

    def __str__(self) -> str:
        where = [part for part in (self.file, self.path) if part]
        return ": ".join([*where, self.message])


@dataclass(frozen=True)
class SpecWarning:
    """Something legal but suspicious, tied to a spec path."""

    path: str
    message: str
    #: "padding" for a stride that leaves only padding unused (collapsed in summaries).
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"
