"""``archcalc check``: validate specs and their ``expect:`` entries, for people and for CI.

Each spec is one result: ok, failed (an invalid spec, a failed expectation, or with
``--strict`` a warning) with the reasons. Output: lines (coloured on a terminal unless
NO_COLOR is set), ``--json`` one report, ``--junit FILE`` JUnit XML that CI systems show.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from archcalc.errors import ArchcalcError
from archcalc.language.key_lines import refine

STDIN = "-"


@dataclass
class SpecResult:
    file: str
    errors: list[str] = field(default_factory=list)  # invalid spec: one line per problem
    failed_expectations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    layers: int = 0
    checked: int = 0  # expected values that were checked

    def passed(self, strict: bool) -> bool:
        return not self.errors and not self.failed_expectations and not (strict and self.warnings)

    def to_dict(self, strict: bool) -> dict:
        return {"file": self.file, "passed": self.passed(strict), "errors": self.errors,
                "failed_expectations": self.failed_expectations, "warnings": self.warnings,
                "layers": self.layers, "expected_values_checked": self.checked}  # fmt: skip


def check_one(path: str) -> SpecResult:
    """Validate one spec (a file, or standard input for ``-``) and its expectations."""
    from archcalc.language.loader import load_spec
    from archcalc.quantities.analysis import analyze
    from archcalc.quantities.expectations import check_expectations
    from archcalc.render.tables import warning_lines

    name = "<stdin>" if path == STDIN else path
    result = SpecResult(name)
    try:
        source = sys.stdin.read() if path == STDIN else Path(path)
        if path == STDIN and "\n" not in source:
            source += "\n"  # a one-line document is text, not a file name
        analysis = analyze(load_spec(source, file=name))
    except ArchcalcError as err:
        result.errors = refine(err.at(file=name)).lines()
        return result
    result.failed_expectations = [str(m) for m in check_expectations(analysis)]
    result.warnings = warning_lines(analysis.warnings)
    result.layers = len(analysis.rows)
    expects = [item.expect for item in analysis.items] + [analysis.spec.expect]
    result.checked = sum(value is not None for e in expects if e is not None for _, value in e)
    return result


def check(args: argparse.Namespace) -> int:
    results = [check_one(path) for path in args.specs]
    if args.junit:
        Path(args.junit).write_text(junit_xml(results, args.strict), encoding="utf-8")
    if args.json:
        data = {"passed": all(r.passed(args.strict) for r in results), "strict": args.strict,
                "specs": [r.to_dict(args.strict) for r in results]}  # fmt: skip
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        paint = Paint(sys.stdout)
        for result in results:
            for line in text_lines(result, args.quiet, args.strict, paint):
                print(line)
        if len(results) > 1 and not args.quiet:
            good = sum(r.passed(args.strict) for r in results)
            print(f"{good} of {len(results)} specs ok")
    return 0 if all(r.passed(args.strict) for r in results) else 1


def text_lines(result: SpecResult, quiet: bool, strict: bool, paint: Paint) -> list[str]:
    lines = [paint.red(line) for line in result.errors]
    lines += [f"{result.file}: {paint.red(m)}" for m in result.failed_expectations]
    if not quiet or strict:
        lines += [f"{result.file}: {paint.yellow(w) if not strict else paint.red(w)}"
                  for w in result.warnings]  # fmt: skip
    if result.passed(strict) and not quiet:
        held = "s hold" if result.checked != 1 else " holds"
        lines.append(f"{result.file}: {paint.green('ok')} ({result.layers} layer"
                     f"{'s' * (result.layers != 1)}, {result.checked} expected value{held})")  # fmt: skip
    return lines


def junit_xml(results: list[SpecResult], strict: bool) -> str:
    """JUnit XML: a test suite ``archcalc check``, a test case per spec; its failure text lists
    every problem, and warnings go to system-out."""
    failures = sum(not r.passed(strict) for r in results)
    suite = ElementTree.Element("testsuite", name="archcalc check", tests=str(len(results)),
                                failures=str(failures), errors="0")  # fmt: skip
    for result in results:
        case = ElementTree.SubElement(
            suite, "testcase", classname="archcalc.check", name=result.file
        )
        problems = result.errors + result.failed_expectations + (result.warnings if strict else [])
        if problems:
            failure = ElementTree.SubElement(case, "failure", message=problems[0],
                                             type="invalid spec" if result.errors else "check")  # fmt: skip
            failure.text = "\n".join(problems)
        if result.warnings:
            ElementTree.SubElement(case, "system-out").text = "\n".join(result.warnings)
    root = ElementTree.Element("testsuites")
    root.append(suite)
    ElementTree.indent(root)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(root, encoding="unicode")
        + "\n"
    )


class Paint:
    """ANSI colour on a terminal only; never where NO_COLOR is set (https://no-color.org)."""

    def __init__(self, stream) -> None:
        self.on = bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get(
            "NO_COLOR"
        )

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.on else text

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)
