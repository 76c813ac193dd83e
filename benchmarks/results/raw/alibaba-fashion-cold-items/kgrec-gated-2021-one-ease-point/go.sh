#!/bin/bash
# kgrec gated on Alibaba-iFashion cold items, seed 2021, the CPU seed-2020 run's single EASE grid point (l2 5000, KG-row weight 4), one thread.
set -e
cd /work/main
export KGREC_DATA_DIR=/work/shared/datasets OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
G=/tmp/gpuw/alibaba-cold
D=/tmp/bench/alicold/gated-2021
date +%s > /tmp/bench/alicold/start2021
/usr/bin/time -v .venv/bin/python -m kgrec train --graph $G --config alibaba-fashion --out $D --quiet \
  --set train.seed=2021 --set train.epochs=20 --set train.side_epochs=3 --set eval.candidates=unseen --set 'model.ease_l2=[5000]' --set 'model.ease_kg_weight=[4]' > /tmp/bench/alicold/train2021.log 2>&1
.venv/bin/python -m kgrec evaluate --run $D --candidates unseen > /tmp/bench/alicold/evaluate2021.log 2>&1
date +%s > /tmp/bench/alicold/end2021
