"""The argument parser of the ``archcalc`` command and its argument types."""

from __future__ import annotations

import argparse
import json

EXAMPLES = """examples:
  archcalc analyze specs/atari_dqn.yaml
  archcalc analyze specs/quiz_conv.yaml --set J=224 --set K=224 --format markdown
  archcalc explain specs/alexnet_conv1_224.yaml
  archcalc check specs/*.yaml
"""


def _parse_set(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE. Received: {text!r}")
    try:
        number = int(value.strip().replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer value. Received: {text!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"symbol values are integers >= 0. Received: {text!r}")
    return name.strip(), number


def _add_values(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="values", metavar="NAME=VALUE", type=_parse_set, action="append",
        default=[], help="give a symbol a value (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--symbolic", action="store_true",
        help="ignore the symbols' default values: every symbol not --set stays free",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archcalc",
        description="Exact layer arithmetic for neural-network specs: output sizes, weights "
        "per neuron, neurons, connections, parameters and MACs, numeric or symbolic.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    analyze = commands.add_parser("analyze", help="summary table of every layer and the totals",
                                  description="Summary table of every layer and the totals.")  # fmt: skip
    analyze.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(analyze)
    analyze.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    analyze.add_argument("--json", action="store_true", help="same as --format json")
    analyze.add_argument("--rf", action="store_true",
                         help="add each layer's receptive field (size/stride/padding)")  # fmt: skip
    analyze.add_argument("--memory", type=_batch, metavar="B",
                         help="add the bytes each layer keeps for backward at batch B "
                         "(float32; see archcalc memory)")  # fmt: skip

    explain = commands.add_parser("explain", help="the working: formula, numbers, value",
                                  description="Each quantity as formula, then with numbers, then the value.")  # fmt: skip
    explain.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    explain.add_argument("--layer", metavar="PATH", help="only this layer (path or name)")
    explain.add_argument("--rf", action="store_true",
                         help="also the receptive field recurrence of every layer")  # fmt: skip
    _add_values(explain)

    check = commands.add_parser("check", help="validate specs and their expect: entries",
                                description="Validate each spec and every expect: entry; "
                                "exit 1 if any spec is invalid or any expectation fails.")  # fmt: skip
    check.add_argument(
        "specs", metavar="SPEC", nargs="+", help="spec files (- reads standard input)"
    )
    check.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    check.add_argument("--strict", action="store_true", help="fail on warnings too")
    check.add_argument("--json", action="store_true", help="print one JSON report")
    check.add_argument("--junit", metavar="FILE",
                       help="also write a JUnit XML report (one test case per spec) for CI")  # fmt: skip

    init = commands.add_parser(
        "init", help="initialisation per weighted layer, and what it does to signals",
        description="Recommend each weighted layer's initial weights and predict, layer by layer, "
        "the variance of signals (forward) and gradients (backward) under a scheme.",
    )  # fmt: skip
    init.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(init)
    init.add_argument(
        "--scheme", default="recommended", metavar="S",
        help="recommended (default), kaiming, xavier, lecun, torch_default or normal:STD",
    )  # fmt: skip
    init.add_argument("--json", action="store_true", help="print JSON")
    init.add_argument(
        "--plot", metavar="FILE.png", help="plot log10 variance against depth for every scheme"
    )

    solve = commands.add_parser(
        "solve", help="find symbol values that satisfy constraints on layers or totals",
        description="Find every integer assignment of the --for symbols (in range) that satisfies "
        "all --where constraints, e.g. --where 'conv1.output == [96, 55, 55]' --where "
        "'conv1.uncovered == 0' or --where 'params < 1000000'. Closed forms via sympy where they "
        "exist, else a bounded integer search.",
    )  # fmt: skip
    solve.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    solve.add_argument("--for", dest="unknowns", required=True, metavar="NAMES",
                       help="symbols to solve for, comma-separated")  # fmt: skip
    solve.add_argument("--where", action="append", required=True, metavar="CONSTRAINT",
                       help="REFERENCE OP VALUE (repeatable)")  # fmt: skip
    solve.add_argument("--range", dest="ranges", action="append", default=[], metavar="[NAME=]LO:HI",
                       help="search range (default 0:1024), for all symbols or one")  # fmt: skip
    solve.add_argument("--set", dest="values", metavar="NAME=VALUE", type=_parse_set, action="append",
                       default=[], help="give another symbol a value (repeatable)")  # fmt: skip
    solve.add_argument("--batch", type=_positive, default=1, metavar="B",
                       help="batch size of memory.* constraints unless solved for (--for batch)")  # fmt: skip
    solve.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                       help="element type of memory.* constraints")  # fmt: skip
    solve.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "none"), default="adam",
                       help="optimizer state of memory.* constraints")  # fmt: skip
    solve.add_argument("--check", dest="checks", type=_non_negative, default=None, metavar="N",
                       help="candidates of a vectorised search re-checked by the exact analysis "
                       "(default 3: the first solution, invalid network and non-solution)")  # fmt: skip
    solve.add_argument("--json", action="store_true", help="print JSON")

    style = commands.add_parser(
        "style", help="neural style transfer sizes: N_l, M_l, Gram matrices, normalisers",
        description="For the chosen layers (by name, path or position conv<stage>_<index>): "
        "filters N_l, positions M_l, Gram size, style normaliser 1/(4 N_l² M_l²) and content term "
        "size, symbolic in the image size where it is a symbol. --verify checks them in PyTorch.",
    )  # fmt: skip
    style.add_argument("spec", metavar="SPEC", help="a spec, e.g. specs/zoo/vgg19.yaml")
    style.add_argument("--content", default="conv4_2", help="content layer (default conv4_2)")
    style.add_argument("--style", default="conv1_1,conv2_1,conv3_1,conv4_1,conv5_1",
                       help="style layers, comma-separated (default: Gatys et al.'s five)")  # fmt: skip
    _add_values(style)
    style.add_argument("--json", action="store_true", help="print JSON")
    style.add_argument("--verify", action="store_true",
                       help="compute Gram matrices and both losses in PyTorch and check them; optimise the pixels")  # fmt: skip
    style.add_argument(
        "--steps", type=_non_negative, default=20, help="pixel optimisation steps for --verify"
    )

    verify = commands.add_parser(
        "verify", help="build the spec in PyTorch, train it, check every number against it",
        description="Build the spec as a real torch.nn model and check shapes, parameters, MACs, "
        "torchinfo's totals and init variances against archcalc, then train it on real data. "
        "Exit 0 only if every check passes. Needs the [verify] extra (PyTorch).",
    )  # fmt: skip
    verify.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(verify)
    verify.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    verify.add_argument(
        "--steps", type=_non_negative, default=200, help="training steps (0 skips training)"
    )
    verify.add_argument("--batch-size", type=_positive, default=64)
    verify.add_argument("--lr", type=float, default=0.01, help="SGD learning rate (momentum 0.9)")
    verify.add_argument(
        "--data", default="digits", help="digits (default), a folder of class folders, or FILE.npz"
    )
    verify.add_argument("--seed", type=int, default=0)
    verify.add_argument("--schemes", default=None, metavar="S,S",
                        help="init schemes to measure (default: all of archcalc init's)")  # fmt: skip
    verify.add_argument(
        "--seeds", type=_positive, default=4, help="random networks per init scheme"
    )
    verify.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch's CPU threads (default: one for small models, else torch's "
                        "choice; the report says which and why)")  # fmt: skip
    verify.add_argument("--nproc", type=_positive, default=None, metavar="N",
                        help="train on N processes with torch.distributed (launched as torchrun "
                        "does; NCCL on GPUs, one a GPU; gloo on the CPU), each on its shard of the "
                        "data, the global batch kept at --batch-size; rank 0 runs the other checks. "
                        "Under a user's own torchrun it is not needed")  # fmt: skip
    verify.add_argument("--compare-init", default=None, metavar="S,S",
                        help="train once per scheme and compare, e.g. kaiming,lecun (He et al. 2015)")  # fmt: skip
    verify.add_argument(
        "--report", metavar="DIR", help="write report.json, report.md and PNG plots"
    )
    verify.add_argument("--json", action="store_true", help="print JSON")
    verify.add_argument(
        "--verbose", "-v", action="store_true", help="list every check, not only failures"
    )

    rf = commands.add_parser(
        "rf", help="receptive field of every layer: size, stride, padding",
        description="For every layer, the input positions one of its units sees: field size r, "
        "effective stride S and padding P per spatial dimension (unit u sees -P + u·S ... "
        "-P + u·S + r - 1); the whole input where a layer mixes every position.",
    )  # fmt: skip
    rf.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    rf.add_argument("--layer", metavar="PATH", help="only this layer (path or name)")
    _add_values(rf)
    rf.add_argument("--json", action="store_true", help="print JSON")

    memory = commands.add_parser(
        "memory", help="training memory: outputs, what backward keeps, totals and peak",
        description="For every layer at batch B: its output and the tensors PyTorch's autograd "
        "keeps for backward (shared storage counted once); totals for parameters, gradients, "
        "optimizer state and saved activations; an estimate of the training peak; and the figures "
        "torchinfo would print. B may be a symbol name (the totals are then formulas in it).",
    )  # fmt: skip
    memory.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    memory.add_argument("--batch", default=1, type=_batch, metavar="B",
                        help="batch size: a positive integer or a symbol name (default 1)")  # fmt: skip
    memory.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32")
    memory.add_argument("--optimizer", choices=("sgd", "momentum", "adam", "none"), default="adam",
                        help="optimizer state: momentum keeps one copy of the parameters, Adam two")  # fmt: skip
    memory.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where dropout keeps a float mask (cpu) or a bool one (cuda)")  # fmt: skip
    memory.add_argument("--layer", metavar="PATH", help="only this layer (path or name)")
    _add_values(memory)
    memory.add_argument("--json", action="store_true", help="print JSON")

    conventions = commands.add_parser(
        "conventions", help="the MAC/FLOP total each peer tool prints, and why it differs",
        description="For torchinfo, fvcore, ptflops (both backends), thop, calflops and "
        "torchscan: the total each prints for the spec's network at batch 1, rebuilt from the "
        "spec alone, its difference from archcalc's MACs and the layer types that make it; then "
        "the published conventions (torchvision's GFLOPS, FLOPs = 2 x MACs, FLOPs with bias "
        "and element-wise ops).",
    )  # fmt: skip
    conventions.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(conventions)
    conventions.add_argument("--json", action="store_true", help="print JSON")

    draw = commands.add_parser(
        "draw", help="pictures: the network, or one layer's convolution arithmetic (SVG or PNG)",
        description="Draw the network as lectures draw LeNet: feature-map blocks to scale with "
        "their shapes, skips and merges as arcs, composites folded (--expand opens them). With "
        "--layer, the convolution arithmetic of one windowed layer: the input grid with its "
        "padding, the first windows with their stride, the uncovered border, the output grid (as "
        "in Dumoulin & Visin's guide). SVG needs nothing; PNG needs matplotlib.",
    )  # fmt: skip
    draw.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    draw.add_argument("--layer", metavar="PATH", help="one layer's arithmetic (path or name)")
    draw.add_argument("--expand", action="append", default=[], metavar="PATH",
                      help="open a folded composite (repeatable; 'all' opens every one)")  # fmt: skip
    draw.add_argument("-o", "--output", required=True, metavar="FILE", help="a .svg or .png file")
    _add_values(draw)

    augment = commands.add_parser(
        "augment", help="distinct training patches from random crops and flips",
        description="Count the distinct patches random crops (and horizontal flips) make from "
        "an image, with the working; AlexNet: --image 256 --crop 224 --flip gives 33×33×2 = 2,178 "
        "and explains the paper's 'factor of 2048'.",
    )  # fmt: skip
    augment.add_argument("--image", required=True, type=_size2, metavar="N or H,W")
    augment.add_argument("--crop", required=True, type=_size2, metavar="C or H,W")
    augment.add_argument("--flip", action="store_true", help="with horizontal reflections")
    augment.add_argument("--json", action="store_true", help="print JSON")

    imp = commands.add_parser(
        "import", help="trace a PyTorch module and write it as a spec",
        description="Trace an nn.Module (torch.fx; torch.export on the example input where fx "
        "cannot) and write a readable spec of it: items named "
        "after the module paths, named inputs only where the graph is not sequential. The spec "
        "records its source, so that `archcalc verify` loads the module's weights into it and "
        "checks both compute the same. Needs the [verify] extra (PyTorch).",
    )  # fmt: skip
    imp.add_argument("target", metavar="TARGET",
                     help="package.module:callable or path/to/file.py:callable (or an nn.Module)")  # fmt: skip
    imp.add_argument("--input", required=True, type=_shape, metavar="C,H,W",
                     help="the input shape, channels first, no batch")  # fmt: skip
    imp.add_argument("--kwargs", default="{}", type=_json_object, metavar="JSON",
                     help="arguments of the callable as a JSON object (null is None)")  # fmt: skip
    imp.add_argument("--name", help="the spec's name (default: the module's class)")
    imp.add_argument("--train", action="store_true",
                     help="trace the training-mode forward pass (e.g. auxiliary heads)")  # fmt: skip
    imp.add_argument("--flat", action="store_true",
                     help="one item per operation, no blocks for repeated submodules")  # fmt: skip
    imp.add_argument("--symbolic", metavar="NAMES",
                     help="name the input's trailing sizes as symbols (H,W for C,H,W), so the "
                     "spec answers for every size; checked by importing again at another size")  # fmt: skip
    imp.add_argument("-o", "--output", metavar="FILE", help="write the spec here (default: stdout)")

    export = commands.add_parser(
        "export", help="write a spec as PyTorch code (or ONNX)",
        description="Write the spec as one standalone PyTorch file (an nn.Module with the "
        "shapes in comments and the recommended init_weights()), or as ONNX. Needs the "
        "[verify] extra (PyTorch; ONNX also needs the onnx package).",
    )  # fmt: skip
    export.add_argument("spec", metavar="SPEC", help="a YAML or JSON spec file")
    _add_values(export)
    export.add_argument("--to", choices=("pytorch", "onnx"), default="pytorch")
    export.add_argument("--class-name", help="the module's class name (default: from the spec)")
    export.add_argument("-o", "--output", metavar="FILE",
                        help="where to write (default: stdout; ONNX needs a file)")  # fmt: skip

    schema = commands.add_parser("schema", help="JSON Schema of the spec language",
                                 description="Print the JSON Schema of the spec language.")  # fmt: skip
    schema.add_argument("--indent", type=int, default=2, help="indentation (default 2)")
    return parser


def _version() -> str:
    from archcalc import __version__

    return f"archcalc {__version__}"


def _positive(text: str) -> int:
    """An integer >= 1; 0, -3 and 1.5 all get the same message (not "an integer >= 0" for -3)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer. Received: {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer. Received: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0. Received: {text!r}")
    return value


def _batch(text: str) -> int | str:
    """A positive batch size, or the name of a symbol for it."""
    text = text.strip()
    if text.isidentifier():
        return text
    value = _positive(text)
    return value


def _size2(text: str) -> tuple[int, int]:
    """``256`` (square) or ``256,320`` (height, width)."""
    sizes = _shape(text)
    if len(sizes) == 1:
        return sizes[0], sizes[0]
    if len(sizes) != 2:
        raise argparse.ArgumentTypeError(f"expected N or H,W. Received: {text!r}")
    return sizes


def _shape(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes like 3,224,224. Received: {text!r}"
        ) from None
    if not sizes or any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(
            f"expected positive sizes like 3,224,224. Received: {text!r}"
        )
    return sizes


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"invalid JSON ({err.msg}). Received: {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object. Received: {text!r}")
    return value
