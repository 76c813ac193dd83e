#!/bin/bash
# kgrec gated (the preset: no text in this release) on Alibaba-iFashion cold items, one seed, one EASE grid point
# (l2 5000, KG-row weight 4: the best of linear_kg.py's grid on validation), two threads.
set -e
cd /work/main
export KGREC_DATA_DIR=/work/shared/datasets OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
G=benchmarks/.work/alibaba-fashion-cold-items/graph
D=/tmp/bench/alicold/gated-2020
date +%s > /tmp/bench/alicold/start
/usr/bin/time -v .venv/bin/python -m kgrec train --graph $G --config alibaba-fashion --out $D --quiet \
  --set train.seed=2020 --set train.epochs=20 --set train.side_epochs=3 --set eval.candidates=unseen --set 'model.ease_l2=[5000]' --set 'model.ease_kg_weight=[4]' > /tmp/bench/alicold/train.log 2>&1
.venv/bin/python -m kgrec evaluate --run $D --candidates unseen > /tmp/bench/alicold/evaluate.log 2>&1
date +%s > /tmp/bench/alicold/end
