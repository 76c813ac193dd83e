#!/bin/bash
set -e
cd /tmp/ali-new
export PYTHONPATH=/tmp/ali-new KGREC_DATA_DIR=/work/shared/datasets OMP_NUM_THREADS=${THREADS:-1} MKL_NUM_THREADS=${THREADS:-1}
PY=/work/main/.venv/bin/python
W=/tmp/bench/e2e2
date +%s > $W/start
/usr/bin/time -v $PY -m kgrec build-graph --dataset alibaba-fashion --out $W/graph > $W/build.log 2>&1
date +%s > $W/built
/usr/bin/time -v $PY -m kgrec train --graph $W/graph --config alibaba-fashion --out $W/gated-2020 --set train.seed=2020 --set train.epochs=20 --set train.side_epochs=3 --quiet > $W/gated-2020.log 2>&1
date +%s > $W/end
