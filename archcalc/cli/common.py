"""What every command shares: loading and analysing the spec named on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from archcalc.errors import ArchcalcError


def analysis_of(args: argparse.Namespace, parser: argparse.ArgumentParser):
    from archcalc.language.loader import load_spec
    from archcalc.quantities.analysis import analyze

    spec = load_spec(Path(args.spec), file=args.spec)
    values = dict(args.values)
    unknown = sorted(set(values) - set(spec.symbols))
    if unknown:
        declared = ", ".join(spec.symbols) or "none"
        parser.error(f"--set {unknown[0]}: not a symbol of {args.spec} (declared: {declared})")
    try:
        analysis = analyze(spec, symbolic=args.symbolic, **values)
    except ArchcalcError as err:
        raise err.at(file=args.spec) from None
    _note_expectations(args, analysis, spec, values)
    return analysis


def _note_expectations(args: argparse.Namespace, analysis, spec, values: dict) -> None:
    """Remember the spec's failed ``expect:`` entries; :func:`run` reports them at the end.

    They fail the command (exit 1) when the spec is analysed at its own values; with
    --set or --symbolic overriding a default they are reported as notes, because the
    entries were written for the defaults.
    """
    from archcalc.quantities.expectations import check_expectations

    overridden = args.symbolic or any(spec.symbols.get(k) != v for k, v in values.items())
    args.expect_failures = [str(m) for m in check_expectations(analysis, decided_only=True)]
    args.expect_binding = not overridden


def schemes(text: str | None, parser: argparse.ArgumentParser, flag: str) -> list[str] | None:
    from archcalc.init.recommend import check_scheme

    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        try:
            check_scheme(name)
        except ArchcalcError as err:
            parser.error(f"{flag}: {err}")
    return names
