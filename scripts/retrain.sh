#!/usr/bin/env bash
# The whole retraining of the shipped model, in resumable stages (each stage skips what is already done).
#
#   scripts/retrain.sh corpus     # rebuild the model-train packages (hours on 2 cores; resumable)
#   scripts/retrain.sh train      # feature cache, eight members (seeds 0-7) and eight of each fold model
#   scripts/retrain.sh compare    # each fold model on its held-out fold's pairs (OLD=DIR: against DIR's)
#   scripts/retrain.sh ship       # ensemble into the package; confidence cross-fitted on the fold models
#   scripts/retrain.sh measure    # dev-eval benchmarks (writes benchmarks/results/)
#
# Cross-fitting: the shipped model trains on every package of corpus/model-train-packages.txt, so no train
# pair is held out from it. Each of the two folds (corpus/crossfit-A.txt, crossfit-B.txt) is held out by one
# fold model (eight members on the other packages); the confidence is fitted on the pooled matches of each
# fold model on its own fold's pairs, and the identifier weight is the one the fold models were fitted to.
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
without() {  # the packages fold $1's model trains on: every model-train package but the fold's (a file's path)
    mkdir -p "$DATA/runs"
    grep -v '^#' corpus/model-train-packages.txt | grep -vxFf <(grep -v '^#' "corpus/crossfit-$1.txt") \
        > "$DATA/runs/without-$1.txt"
    echo "$DATA/runs/without-$1.txt"
}
member() {  # run, packages, seed
    [ -f "$DATA/runs/$1/last.safetensors" ] || python -m symbridge.train.train --out "$DATA/runs/$1" \
        --cache "$CACHE" --max-steps 1200 --rebuild-share 0.5 --packages "$2" \
        --seed "$3" --minutes 60 --batch "${BATCH:-1024}"  # 1,024: +0.004-0.010 on held-out pairs
}
fold_runs() { for s in 0 1 2 3 4 5 6 7; do printf '%s ' "$DATA/runs/fold$1-$s/last.safetensors"; done; }
fold_model() {  # the eight members of fold $1 as one model; its identifier weight fitted on the fold's pairs
    [ -f "$DATA/runs/fold$1.safetensors" ] || python -m symbridge.train.finalize $(fold_runs "$1") --bits 4 \
        --corpus "$DATA/corpus" --model-packages "$(without "$1")" --out "$DATA/runs/fold$1.safetensors"
}

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
        member "$r" corpus/model-train-packages.txt "$seed"
        seed=$((seed + 1))
    done
    for fold in A B; do
        list=$(without $fold)
        for s in 0 1 2 3 4 5 6 7; do member "fold$fold-$s" "$list" "$s"; done
    done
    ;;
compare)
    for fold in A B; do
        fold_model $fold
        python -m symbridge.train.heldout ${OLD:+"$OLD/fold$fold.safetensors"} "$DATA/runs/fold$fold.safetensors" \
            --per-kind 30 --seed 11 --corpus "$DATA/corpus" --model-packages "$(without $fold)"
    done
    ;;
ship)
    dumps=()
    for fold in A B; do
        fold_model $fold
        [ -f "$DATA/fit-examples-$fold.npz" ] || python -m symbridge.train.fit_matcher --no-fit-params \
            --per-kind 40 --related 40 --unrelated 24 --mixed 40 --everything 30 --corpus "$DATA/corpus" --model "$DATA/runs/fold$fold.safetensors" \
            --model-packages "$(without $fold)" --out "$DATA/runs/fold$fold.calibration.json" \
            --dump "$DATA/fit-examples-$fold.npz"
        dumps+=("$DATA/fit-examples-$fold.npz")
    done
    weight=$(python -c 'import sys; from symbridge.model.model import Model
print(sum(Model.load(p).meta["identifier_weight"] for p in sys.argv[1:]) / 2)' \
        "$DATA/runs/foldA.safetensors" "$DATA/runs/foldB.safetensors")  # the folds' fits, averaged
    args=()
    for r in $RUNS; do args+=("$DATA/runs/$r/last.safetensors"); done
    python -m symbridge.train.finalize "${args[@]}" --bits 4 --identifier-weight "$weight"  # 4-bit tables
    python -m symbridge.train.torch_reference  # the parity test's PyTorch forward of the new model
    python -m symbridge.train.fit_matcher --examples "${dumps[@]}"
    # the shift filter on every train package's pairs: the shipped model has seen them all (fitted on pairs the
    # model had seen, it measured as one fitted on held-out pairs did, on other held-out pairs; session 46)
    : > "$DATA/runs/no-packages.txt"
    python -m symbridge.train.fit_analogy --model-packages "$DATA/runs/no-packages.txt" --corpus "$DATA/corpus"
    ;;
measure)
    python benchmarks/accuracy.py --kinds cross-release cross-release-static cross-opt cross-compiler cross-version \
        cross-everything --max-pairs 12 --corpus "$DATA/corpus"
    python benchmarks/partial_overlap.py
    ;;
*)
    sed -n '2,/^set /p' "$0" | grep '^#'
    exit 2
    ;;
esac
