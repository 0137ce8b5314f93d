#!/usr/bin/env bash
# The whole retraining of the shipped model, in resumable stages (each stage skips what is already done).
#
#   scripts/retrain.sh corpus     # rebuild the model-train packages (hours on 2 cores; resumable)
#   scripts/retrain.sh train      # feature cache, eight members (seeds 0-7), split out the shipped members
#   scripts/retrain.sh compare    # held-out train pairs: new members against the shipped ones (never dev-eval)
#   scripts/retrain.sh ship       # ensemble + identifier weight into the package, refit the confidence
#   scripts/retrain.sh measure    # dev-eval benchmarks (writes benchmarks/results/)
#
# Needs `pip install -e '.[train]'`, gcc, clang and the build tools listed in docs/model-card.md.
# DATA (default /work/data) holds the corpus, caches and runs; RUNS names the new runs (one member each, seeds
# from 0); BATCH the batch size;
# FS the feature set (default 6).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/work/data}
RUNS=${RUNS:-"r0 r1 r2 r3 r4 r5 r6 r7"}
FS=${FS:-6}  # feature set (symbridge.model.features)
CACHE=$DATA/features-fs$FS
stage=${1:-}

packages() { grep -v '^#' corpus/model-train-packages.txt | tr '\n' ' '; }

case "$stage" in
corpus)
    # downloads first (cheap), then the first pass of rebuilds (-O0/-O2/-O3, gcc and clang), then -O1/-Os
    python -m symbridge.train.corpus --split train --out "$DATA/corpus"
    for p in $(packages); do
        nice -n 19 python -m symbridge.train.corpus --split train --out "$DATA/corpus" --rebuild --first-pass --only "$p"
    done
    for p in $(packages); do
        nice -n 19 python -m symbridge.train.corpus --split train --out "$DATA/corpus" --rebuild --only "$p"
    done
    ;;
train)
    python -m symbridge.train.dataset --feature-set "$FS" --cache "$CACHE" --corpus "$DATA/corpus"
    seed=0
    for r in $RUNS; do
        [ -f "$DATA/runs/$r/last.safetensors" ] || python -m symbridge.train.train --out "$DATA/runs/$r" \
            --cache "$CACHE" --max-steps 1200 --rebuild-share 0.5 --packages corpus/model-train-packages.txt \
            --seed "$seed" --minutes 60 --batch "${BATCH:-1024}"  # 1,024: +0.004-0.010 on held-out pairs
        seed=$((seed + 1))
    done
    python - "$DATA/runs" <<'EOF'
import sys
from symbridge.model.model import Model
m = Model.default()
for k in range(m.n_members):  # the shipped members alone, to compare like with like
    meta = {key: v for key, v in m.meta.items() if key != "member_runs"}
    meta.update(members=1, identifier_weight=0.0, name=f"shipped-m{k}")
    Model(dict(m.parts[k]), meta, f"m{k}").save(f"{sys.argv[1]}/shipped-m{k}.safetensors")
EOF
    ;;
compare)
    args=()
    for r in $RUNS; do args+=("$DATA/runs/$r/last.safetensors"); done
    shipped=("$DATA"/runs/shipped-m*.safetensors)
    python -m symbridge.train.heldout "${shipped[@]}" "${args[@]}" --per-kind 30 --seed 11 --corpus "$DATA/corpus"
    ;;
ship)
    args=()
    for r in $RUNS; do args+=("$DATA/runs/$r/last.safetensors"); done
    python -m symbridge.train.finalize "${args[@]}" --bits 4 --corpus "$DATA/corpus"  # eight members: 4-bit tables
    python -m symbridge.train.fit_matcher --no-fit-params --per-kind 40 --related 40 --unrelated 24 \
        --mixed 40 --everything 30 --corpus "$DATA/corpus" --dump "$DATA/fit-examples.npz"
    ;;
measure)
    python benchmarks/accuracy.py --kinds cross-release cross-release-static cross-opt cross-compiler cross-version \
        cross-everything --max-pairs 12 --corpus "$DATA/corpus"
    python benchmarks/partial_overlap.py
    ;;
*)
    sed -n '2,10p' "$0"
    exit 2
    ;;
esac
