"""Fuzz archcalc with mutated specs: no internal error, no hang, only ArchcalcError.

Each case takes a shipped spec (or a small generated one), applies 1-4 random mutations
(a field set to a hostile value, a key deleted or misspelt, a layer duplicated, dropped or
retyped, the input reshaped, a symbol freed) and runs what a user would: analyze, then on
a valid result explain, init, rf and memory (their tables, symbolic ones with named sizes)
and the Markdown and JSON renderings. Each case is also analysed with every symbol free on
archcalc's own symbolic values and on sympy's: the JSON, table and Markdown (or the error)
must be the same where the former answer. Outcomes are counted as
valid, refused (ArchcalcError) or a defect: any other exception, or a case that runs
longer than the time limit (SIGALRM). Defective cases are written to --out as YAML.

    python benchmarks/fuzz.py --count 10000 --seed 0          # about 10-20 minutes on 2 cores

Not part of CI's time budget; its figures are in the README.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import signal
import sys
import time
import traceback
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from archcalc import ArchcalcError, analyze  # noqa: E402
from archcalc.language.loader import parse_document  # noqa: E402

HOSTILE = [0, -1, 1, 2, 3, 7, 10**6, 10**18, 2**63, -(2**40), 1.5, -0.5, True, False, None, "", "same",
           "valid", "same_upper", "x", "A", "a", "2^3", "1/0", "x/(x-x)", "x % (x-x)", "9**9**9",
           "max(1, 2)", "floor(7/2)", "make_divisible(33, 8)", "__import__('os')", "(" * 50,
           "1" * 400, [], [1], [1, 2], [[0, 1], [1, 0]], {}, {"a": 1}, "relu", "nearest", "\t",
           "lambda: 1", "[1, 2]", 1e300, float("nan"), "C_in", "H_in // 2", "0.5"]  # fmt: skip
FIELDS = ["out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "out_features",
          "in_features", "p", "num_heads", "times", "activation", "output_size", "size", "dim",
          "start", "length", "dims", "shape", "scale_factor", "mode", "num_groups",
          "normalized_shape", "inputs", "input", "name", "when", "type", "bias", "ceil_mode",
          "padding_end", "upscale_factor", "groups", "like", "expect", "branches", "body"]  # fmt: skip
TYPES = ["conv2d", "conv1d", "conv3d", "linear", "relu", "maxpool2d", "avgpool2d", "batchnorm2d",
         "flatten", "dropout", "residual", "concat", "add", "mul", "repeat", "multihead_attention",
         "adaptive_avgpool2d", "layernorm", "reshape", "permute", "upsample", "zero_pad",
         "center_crop", "channel_shuffle", "pixel_shuffle", "parameter", "conv_transpose2d",
         "narrow", "mean", "transpose", "group_norm", "bogus", "Conv2d", ""]  # fmt: skip


class Timeout(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001
    raise Timeout


def items(node, found):
    """Every layer item (a dict with a type) in the document, with its parent list."""
    if isinstance(node, dict):
        for value in node.values():
            items(value, found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, dict) and "type" in value:
                found.append((node, i))
            items(value, found)
    return found


def mutate(doc: dict, rng: random.Random) -> str:
    layers = items(doc, [])
    kind = rng.choice(["set", "set", "set", "delete", "misspell", "duplicate", "drop", "retype",
                       "input", "symbol", "top"])  # fmt: skip
    if kind == "input":
        doc["input"] = rng.choice([[3, 32, 32], [32, 32, 3], [1], [3, 0, 5], [3, 10**9, 8], ["S", "S"],
                                   [3, 7, 7], [4, 84, 84], [1, 2, 3, 4, 5], "x", [3, 2, 2], [3, 1, 1]])  # fmt: skip
        return f"input={doc['input']}"
    if kind == "symbol":
        symbols = doc.get("symbols") or {}
        if symbols:
            name = rng.choice(sorted(symbols))
            symbols[name] = rng.choice([None, 0, 1, 10**7, -1])
            return f"symbols.{name}={symbols[name]}"
        doc["symbols"] = {"x": rng.choice([None, 3])}
        return "symbols={x}"
    if kind == "top":
        key = rng.choice(["name", "layers", "outputs", "blocks", "expect", "imput", "description"])
        doc[key] = rng.choice(HOSTILE)
        return f"{key}={doc[key]!r}"
    if not layers:
        return "none"
    parent, index = rng.choice(layers)
    item = parent[index]
    if kind == "set":
        field = rng.choice(FIELDS)
        item[field] = copy.deepcopy(rng.choice(HOSTILE))
        return f"{field}={item[field]!r}"
    if kind == "delete" and len(item) > 1:
        field = rng.choice([k for k in item if k != "type"] or ["type"])
        del item[field]
        return f"del {field}"
    if kind == "misspell":
        field = rng.choice(list(item))
        item[field[:-1] + "x"] = item.pop(field)
        return f"misspell {field}"
    if kind == "duplicate":
        parent.insert(index, copy.deepcopy(item))
        return "duplicate"
    if kind == "drop" and len(parent) > 1:
        parent.pop(index)
        return "drop"
    item["type"] = rng.choice(TYPES)
    return f"type={item['type']}"


def _printed_or_error(doc: dict, native: bool) -> str | None:
    """What analyze prints of the symbolic analysis (JSON, table, Markdown) or its error, on
    sympy's or on archcalc's own values (None where those refuse: archcalc.language.native)."""
    from archcalc.language import expr
    from archcalc.language.native import NotNative
    from archcalc.render.tables import markdown, table, to_json

    def printed() -> str:
        net = analyze(copy.deepcopy(doc), symbolic=True)
        return to_json(net) + table(net) + markdown(net)

    try:
        if not native:
            return printed()
        with expr.native_values():
            return printed()
    except NotNative:
        return None
    except ArchcalcError as err:
        return f"error: {err}"


def check_native(doc: dict) -> None:
    """analyze's own symbolic values must print what sympy's do (or its error), or refuse."""
    mine = _printed_or_error(doc, native=True)
    if mine is not None and mine != _printed_or_error(doc, native=False):
        raise AssertionError("archcalc's own symbolic values printed other output than sympy's")


def run_case(doc: dict) -> str:
    """analyze, then what a user runs next; 'valid' or 'refused'."""
    check_native(doc)
    from archcalc.init.propagation import propagate
    from archcalc.quantities.memory import training_memory
    from archcalc.quantities.receptive import receptive_fields
    from archcalc.questions.explain import explain
    from archcalc.render.fields import rf_table
    from archcalc.render.memory import memory_table
    from archcalc.render.tables import init_table, markdown, table, to_json

    try:
        net = analyze(doc)
        table(net)  # symbolic: sizes named (render.legend)
        markdown(net)
        to_json(net)
        explain(net)
        rf_table(net, receptive_fields(net.graph))
        memory_table(training_memory(net, batch=2))
        init_table(net, "kaiming")
        if not net.symbolic:
            propagate(net, "recommended")
        return "valid"
    except ArchcalcError as err:
        for line in str(err).split("\n"):
            if not line.strip() or "Traceback" in line:
                raise AssertionError(f"malformed message: {str(err)!r}") from None
        return "refused"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=10.0, help="seconds per case")
    parser.add_argument("--out", default="fuzz-failures", help="where defective cases go")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sources = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs/zoo").glob("*.yaml"))
    docs = [parse_document(p.read_text())[0] for p in sources]
    signal.signal(signal.SIGALRM, _alarm)
    counts = {"valid": 0, "refused": 0, "defect": 0, "slow": 0}
    slowest = (0.0, "")
    start = time.process_time()
    wall = time.perf_counter()
    out = Path(args.out)
    for case in range(args.count):
        index = rng.randrange(len(docs))
        doc = copy.deepcopy(docs[index])
        done = [mutate(doc, rng) for _ in range(rng.randint(1, 4))]
        began = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, args.limit)
        try:
            outcome = run_case(doc)
        except Timeout:
            outcome, detail = "slow", f"over {args.limit} s"
        except Exception as err:  # noqa: BLE001 - a defect: record it
            outcome, detail = "defect", "".join(traceback.format_exception_only(err)).strip()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        took = time.perf_counter() - began
        if took > slowest[0]:
            slowest = (took, f"{sources[index].name}: {'; '.join(done)}")
        counts[outcome] += 1
        if outcome in ("defect", "slow"):
            out.mkdir(exist_ok=True)
            (out / f"case{case}.yaml").write_text(
                f"# {sources[index].name}: {'; '.join(done)}\n# {detail}\n"
                + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
            )
            print(
                f"case {case}: {outcome}: {sources[index].name}: {'; '.join(done)}: {detail}",
                flush=True,
            )
    cpu = time.process_time() - start
    summary = {"cases": args.count, "seed": args.seed, **counts,
               "cpu_seconds": round(cpu, 1), "wall_seconds": round(time.perf_counter() - wall, 1),
               "slowest_case_seconds": round(slowest[0], 2), "slowest_case": slowest[1]}  # fmt: skip
    print(json.dumps(summary, indent=2))
    return 1 if counts["defect"] or counts["slow"] else 0


if __name__ == "__main__":
    sys.exit(main())
