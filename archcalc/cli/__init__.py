"""The ``archcalc`` command line.

Exit status: 0 success, 1 invalid spec or failed expectation, 2 usage error.
Bad input never prints a traceback (set ARCHCALC_DEBUG=1 to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from archcalc.cli import bridge, quantities
from archcalc.cli.parser import build_parser
from archcalc.errors import ArchcalcError

__all__ = ["build_parser", "main", "run"]


def run(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # verify --nproc relaunches them
    commands = {**quantities.COMMANDS, **bridge.COMMANDS}
    if args.command == "check":
        from archcalc.cli.checking import check

        return check(args)
    # a command's usage errors show its own usage line (archcalc init [-h] ... SPEC), not
    # the top-level one
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    status = commands[args.command](args, subparsers.choices[args.command])
    failures = getattr(args, "expect_failures", [])
    if failures and not args.expect_binding:
        count = len(failures)
        print(f"archcalc: note: {args.spec}: {count} expect: entr{'ies do' if count > 1 else 'y does'}"
              " not hold with these symbol values (the spec's entries are for its own values)",
              file=sys.stderr)  # fmt: skip
        return status
    for failure in failures:
        print(f"archcalc: error: {args.spec}: expectation failed: {failure}", file=sys.stderr)
    return max(status, 1) if failures else status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``archcalc`` command."""
    try:
        return run(argv)
    except ArchcalcError as err:
        from archcalc.cli.checking import Paint
        from archcalc.language.key_lines import refine

        paint = Paint(sys.stderr)
        for line in refine(err).lines():
            print(f"archcalc: {paint.red('error')}: {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:  # a bug in archcalc, not bad input: still no traceback by default
        if os.environ.get("ARCHCALC_DEBUG"):
            raise
        print(f"archcalc: internal error: {type(err).__name__}: {err} "
              "(please report it; ARCHCALC_DEBUG=1 shows the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
