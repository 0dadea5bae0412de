#!/usr/bin/env bash
# The checks that need a GPU, as one script for a lent machine (see README, "Proof against
# PyTorch"): verify on CUDA (every check, training LeNet-5; check 9's GPU peak), and LeNet-5's
# training time to 97 % on the GPU. Needs python3 with torch (CUDA), scikit-learn, sympy and
# PyYAML; pydantic and torchinfo may come as wheels in .whl/ (pip download, see the device notes).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
for spec in specs/lenet5.yaml specs/alexnet.yaml specs/zoo/resnet18.yaml specs/zoo/resnet50.yaml; do
    name=$(basename "$spec" .yaml)
    steps=200; [ "$name" = lenet5 ] || steps=0
    /usr/bin/time -f "$name: %e s wall" python3 -m archcalc verify "$spec" --device cuda \
        --steps $steps --seeds 2 --json > "$OUT/$name.json" 2> "$OUT/$name.err"
    echo "$name: exit $?"; tail -2 "$OUT/$name.err"
    python3 - "$OUT/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
failed = [c for c in r["checks"] if not c["passed"]]
kinds = {}
for c in r["checks"]:
    kinds.setdefault(c["name"].split(":")[0], [0, 0])[0 if c["passed"] else 1] += 1
print(r["device"], "passed" if r["passed"] else "FAILED", kinds, r.get("seconds"))
for c in failed[:10]:
    print("  FAIL", c["name"], c["expected"], c["measured"], c.get("detail", ""))
for n in r["notes"]:
    print("  note:", n)
PY
done
python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import bench; bench.bench_verify()"
