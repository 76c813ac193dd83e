#!/usr/bin/env bash
# The GPU path end to end on one CUDA machine, stage by stage: the demo on ml-100k (build-graph, train --fusion
# gated, evaluate, recommend --explain) and Alibaba-iFashion with its preset (seed 2020, the CPU runs' settings),
# every stage with --device cuda. Writes OUT/stages.tsv (stage, exit code, seconds), OUT/summary.json (each run's
# metrics.json and run.json) and OUT/logs.tar.gz. COLD_SEEDS="2021 2022" adds the Alibaba cold-items study (the
# cold-items split of benchmarks/run.py, kgrec gated ranked among held-out items, its EASE grid chosen on validation)
# for those training seeds; SKIP="ml100k alibaba" leaves those parts out.
#
#   KGREC_DATA_DIR=... benchmarks/gpu_check.sh OUT [TEXT_MODEL]
#
# PYTHON (default python3) must import kgrec; TEXT_MODEL is passed to --text-model (default: the bundled MiniLM).
# Each stage has its own time limit (seconds, LIMIT_<STAGE> overrides it) so that one slow stage cannot take the
# rest, and BUDGET (seconds, default 540) caps the whole script so that the summary is always written; a stage
# that fails or runs out of time is recorded and the later stages of that dataset are skipped.
set -u
OUT=${1:?usage: gpu_check.sh OUT [TEXT_MODEL]}
TEXT_MODEL=${2:-}
PY=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d)}
mkdir -p "$OUT/logs"
printf 'stage\trc\tseconds\n' > "$OUT/stages.tsv"
DEADLINE=$(( $(date +%s) + ${BUDGET:-540} - 15 ))

stage() {  # stage NAME LIMIT_SECONDS kgrec-args...
    local name=$1 limit=$2 start rc left
    shift 2
    left=$(( DEADLINE - $(date +%s) ))
    (( left < limit )) && limit=$left
    (( limit < 5 )) && { printf '%s\tskipped\t0\n' "$name" | tee -a "$OUT/stages.tsv"; return 1; }
    start=$(date +%s%N)
    timeout "$limit" "$PY" -m kgrec "$@" > "$OUT/logs/$name.log" 2>&1
    rc=$?
    printf '%s\t%s\t%d.%d\n' "$name" "$rc" $(( ($(date +%s%N) - start) / 1000000000 )) \
        $(( ($(date +%s%N) - start) / 100000000 % 10 )) | tee -a "$OUT/stages.tsv"
    return $rc
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import importlib.metadata, torch, torch_geometric, transformers; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
torch.cuda.get_device_name(0), '| pyg', torch_geometric.__version__, '| transformers', transformers.__version__, '| pykeen', importlib.metadata.version('pykeen'))"
  nproc; } > "$OUT/logs/env.log" 2>&1
cat "$OUT/logs/env.log"

text=()
[ -n "$TEXT_MODEL" ] && text=(--text-model "$TEXT_MODEL")
skip() { [[ " ${SKIP:-} " == *" $1 "* ]]; }
if ! skip ml100k; then
stage ml100k-build "${LIMIT_ML100K_BUILD:-120}" build-graph --dataset ml-100k --out "$WORK/ml-100k" &&
stage ml100k-train "${LIMIT_ML100K_TRAIN:-240}" train --graph "$WORK/ml-100k" --fusion gated --out "$WORK/ml-100k-gated" \
    --device cuda --quiet "${text[@]}" &&
stage ml100k-evaluate "${LIMIT_ML100K_EVALUATE:-60}" evaluate --run "$WORK/ml-100k-gated" --device cuda &&
stage ml100k-recommend "${LIMIT_ML100K_RECOMMEND:-60}" recommend --run "$WORK/ml-100k-gated" --user 196 -k 10 --explain \
    --device cuda
fi

if ! skip alibaba; then
stage alibaba-build "${LIMIT_ALIBABA_BUILD:-150}" build-graph --dataset alibaba-fashion --out "$WORK/alibaba" &&
stage alibaba-train "${LIMIT_ALIBABA_TRAIN:-420}" train --graph "$WORK/alibaba" --config alibaba-fashion \
    --set train.seed=2020 --set train.epochs=20 --set train.side_epochs=3 --out "$WORK/alibaba-gated" --device cuda --quiet
fi

cold=()
if [ -n "${COLD_SEEDS:-}" ] && stage alibaba-cold-build "${LIMIT_ALIBABA_BUILD:-150}" build-graph --dataset alibaba-fashion \
    --split cold-items --seed 2020 --out "$WORK/alibaba-cold"; then
    for seed in $COLD_SEEDS; do
        cold+=("alibaba-cold-gated-$seed")
        stage "alibaba-cold-train-$seed" "${LIMIT_ALIBABA_TRAIN:-420}" train --graph "$WORK/alibaba-cold" --config alibaba-fashion \
            --set train.seed="$seed" --set train.epochs=20 --set train.side_epochs=3 --set eval.candidates=unseen \
            --set 'model.ease_l2=[500,5000,100000]' --set 'model.ease_kg_weight=[0,1,4]' \
            --out "$WORK/alibaba-cold-gated-$seed" --device cuda --quiet &&
        stage "alibaba-cold-evaluate-$seed" "${LIMIT_ML100K_EVALUATE:-60}" evaluate --run "$WORK/alibaba-cold-gated-$seed" \
            --candidates unseen --device cuda
    done
    "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['files']['interactions.parquet'][:16])" \
        "$WORK/alibaba-cold/manifest.json" > "$OUT/logs/alibaba-cold-split.txt"
fi

"$PY" - "$WORK" "$OUT/summary.json" "${cold[@]}" <<'EOF'
import json, sys
from pathlib import Path
work, summary = Path(sys.argv[1]), {}
for run in ("ml-100k-gated", "alibaba-gated", *sys.argv[3:]):
    summary[run] = {name: json.loads((work / run / f"{name}.json").read_text())
                    for name in ("metrics", "run") if (work / run / f"{name}.json").exists()}
Path(sys.argv[2]).write_text(json.dumps(summary, indent=1))
EOF
tar czf "$OUT/logs.tar.gz" -C "$OUT" logs && rm -r "$OUT/logs"
cat "$OUT/stages.tsv"
