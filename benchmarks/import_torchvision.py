"""Import every classification model torchvision ships and compare with its published figures.

    .venv/bin/python benchmarks/import_torchvision.py [--verify] [NAME ...]

For each model: archcalc import (torch.fx) -> spec -> archcalc's parameters and MACs,
against the weights' published ``num_params`` (exact) and ``_ops`` (GFLOPS at their
published precision); with --verify, also check 7 (the module's weights loaded into
the spec's model give the same outputs). Needs torchvision; on a machine whose
torchvision wheel does not match torch (compiled ops that cannot register), its model
code is imported with ``torch.library.register_fake`` as a no-op.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from tests.torchvision_models import classification_models, import_torchvision  # noqa: E402


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    import warnings

    warnings.filterwarnings("ignore")
    tv = import_torchvision()
    if tv is None:
        print("torchvision cannot be imported here: nothing to do")
        return 0
    from archcalc import analyze
    from archcalc.language.writer import to_yaml
    from verify.build import build
    from verify.importer import import_module
    from verify.source import source_checks

    check = "--verify" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    rows, ok = [], 0
    models = classification_models(tv)
    for name, builder, weights in models:
        if wanted and name not in wanted:
            continue
        meta = weights.meta
        crop = getattr(weights.transforms(), "crop_size", [224])[0]
        shape = (3, crop, crop)
        start = time.process_time()
        try:
            import inspect

            kwargs = {}
            if "image_size" in inspect.signature(tv.models.vision_transformer.VisionTransformer).parameters \
                    and name.startswith("vit") and crop != 224:  # fmt: skip
                kwargs["image_size"] = crop  # published at the weights' own resolution
            module = builder(weights=None, **kwargs)
            # Inception-v3's published parameters include its auxiliary head: trace training mode
            imported = import_module(module, shape, name=name, training=name == "inception_v3")
            analysis = analyze(to_yaml(imported.spec))
        except Exception as err:  # report and go on: the point is the whole list
            rows.append((name, "FAIL", str(err).splitlines()[0][:300]))
            print(f"{name:<28} FAIL     {rows[-1][2]}", flush=True)
            continue
        params, macs = analysis.totals["params"], analysis.totals["macs"]
        if len(analysis.graph.outputs) > 1:  # published in eval mode: the main output's MACs
            needed = analysis.graph.live(analysis.graph.outputs[:1])
            macs = sum(row.macs for row in analysis.rows if needed[row.node])
        ops = meta["_ops"]
        digits = len(f"{ops}".replace(".", "").lstrip("0"))
        same_params = params == meta["num_params"]
        same_ops = float(f"{macs / 1e9:.{max(digits, 1)}g}") == float(f"{ops:.{max(digits, 1)}g}")
        verdict = "ok" if same_params and same_ops else "DIFFERS"
        detail = (f"params {params:,} (published {meta['num_params']:,}), MACs {macs:,} "
                  f"(published {ops} G) at {shape[1]}; {len(imported.spec['layers'])} items, "
                  f"{len(imported.spec.get('blocks', {}))} blocks, {time.process_time() - start:.1f} s")  # fmt: skip
        if check and macs > 40e9:
            detail += (
                "; not run for check 7 (over 40 GMACs: too slow on this CPU in double precision)"
            )
        elif check:
            training = name == "inception_v3"
            analysis = analyze(to_yaml({**imported.spec, "source": {
                "module": "-", "training": training, "parameters": imported.parameters}}))  # fmt: skip
            model = build(analysis)
            result = source_checks(analysis, model, torch.device("cpu"), module=module)
            failed = [c.name for c in result if not c.passed]
            detail += "; same outputs" if not failed else f"; FAILED {failed}"
            verdict = verdict if not failed else "DIFFERS"
        ok += verdict == "ok"
        rows.append((name, verdict, detail))
        print(f"{name:<28} {verdict:<8} {detail}", flush=True)
    print(f"{ok} of {len(rows)} models import with their published figures")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
