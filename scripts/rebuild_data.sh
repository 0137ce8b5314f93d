#!/usr/bin/env bash
# Rebuild, from Debian's archive, the data the benchmarks and the confidence calibration read, after the data
# directory was lost (it was, twice). Resumable: each step skips what is already there.
#
#   scripts/rebuild_data.sh eval          # dev-eval downloads, then rebuilds (about 45 min on 2 cores)
#   scripts/rebuild_data.sh calibration   # train downloads (about 40 min), then first-pass rebuilds of the
#                                         # packages fit_matcher's draw needs (about 40 min) and the newer
#                                         # source of its cross-version pairs (10 min), then the static
#                                         # programs of its shared-static pairs (a minute)
#   scripts/rebuild_data.sh all           # both, one after the other
#
# Then: python -m symbridge.train.fit_matcher --no-fit-params --per-kind 40 --related 40 --unrelated 24 \
#         --mixed 40 --everything 30 --corpus "$DATA/corpus"  and  scripts/retrain.sh measure.
# The corpus builder runs from a worktree of HEAD ($DATA/tree), so that the manifests it writes do not
# rewrite the committed ones. The steps run one after the other: two builders updating a suite's apt lists
# at once fail on its lock. DATA defaults to /work/data. The model-train packages' rebuilds, needed only to
# retrain the model, are `scripts/retrain.sh corpus`.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/work/data}
CORPUS=$DATA/corpus
TREE=$DATA/tree
mkdir -p "$DATA/logs"

worktree() {
    if [ ! -d "$TREE" ]; then
        git worktree prune
        git worktree add --detach "$TREE" HEAD >/dev/null
    fi
}

corpus() {  # corpus builder of the worktree, logged
    local log=$1
    shift
    echo "$(date +%T) symbridge.train.corpus $* (log: $DATA/logs/$log.log)"
    (cd "$TREE" && PYTHONPATH="$TREE/src" nice -n 10 python -m symbridge.train.corpus --out "$CORPUS" "$@") \
        >>"$DATA/logs/$log.log" 2>&1
}

eval_data() {
    worktree
    corpus dev-eval-downloads --split dev-eval
    corpus dev-eval-rebuilds --split dev-eval --rebuild
}

calibration_data() {
    worktree
    corpus train-downloads --split train
    # the packages of the calibration's draw whose files are still missing: rebuilds (first pass is enough)
    for p in $(python -m symbridge.train.fit_matcher --missing-packages --per-kind 40 --related 40 \
               --unrelated 24 --mixed 40 --everything 30 --corpus "$CORPUS"); do
        corpus "rebuild-$p" --split train --rebuild --first-pass --only "$p" || echo "failed: $p (see its log)"
    done
    # the cross-version pairs' newer source: trixie's, or sid's where the mirror no longer has trixie's (gcc -O2)
    for p in $(python -m symbridge.train.fit_matcher --missing-packages --per-kind 40 --related 40 \
               --unrelated 24 --mixed 40 --everything 30 --corpus "$CORPUS"); do
        corpus "rebuild-cv-$p" --split train --rebuild --suite bookworm trixie sid --compilers gcc --opts=-O2 \
            --only "$p" || echo "failed: $p (see its log)"
    done
    echo "still missing: $(python -m symbridge.train.fit_matcher --missing-packages --per-kind 40 --related 40 \
          --unrelated 24 --mixed 40 --everything 30 --corpus "$CORPUS" | tr '\n' ' ')"
    # static programs of bookworm's -dev archives, the targets of fit_matcher's shared-static pairs (a minute)
    python -m symbridge.train.shared_static --suite bookworm --corpus "$CORPUS" >>"$DATA/logs/shared-static.log" 2>&1
}

case "${1:-}" in
eval) eval_data ;;
calibration) calibration_data ;;
all) eval_data; calibration_data ;;
*) sed -n '2,15p' "$0"; exit 2 ;;
esac
