#!/usr/bin/env bash
# Runs the paper-comparison grid, the capacity sweep and the fitness variants, then merges
# everything into docs/results/report.md. Each step writes results.json after every run, so an
# interrupted grid still leaves its rows (rebuild the report with the last command below).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.flexmoe/experiments/grid}
FLEXMOE=${FLEXMOE:-npx flexmoe experiment}
NICE=${NICE:-nice -n 10}

# 1. Main grid: MNIST and Fashion-MNIST x IID, Dirichlet 0.8, 4-class x six strategies x 3 seeds
#    (non-IID first, so a cut-short run still covers the must-show partitions).
$NICE $FLEXMOE --partition dirichlet:0.8,classes:4,iid --out "$OUT/main"
# 2. Capacity sweep (k = 2 comes from the main grid): MNIST, non-IID, 1 seed.
$NICE $FLEXMOE --dataset mnist --partition dirichlet:0.8,classes:4 --strategy flex,greedy,random,roundrobin \
  --capacity 1 --capacity 4 --capacity 1,2,4 --seeds 1 --out "$OUT/capacity"
# 3. Loss-driven fitness (acc comes from the main grid): MNIST, non-IID, flex and greedy, 3 seeds.
$NICE $FLEXMOE --dataset mnist --partition dirichlet:0.8,classes:4 --strategy flex,greedy --fitness loss --out "$OUT/fitness"
# 4. One report over everything.
$FLEXMOE --report-only --out docs/results --merge "$OUT/main,$OUT/capacity,$OUT/fitness"
