"""The one exception of the vectorised search."""


class Unsupported(Exception):
    """The question is outside what the vectorised path answers exactly; say why."""
