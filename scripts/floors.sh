#!/usr/bin/env bash
# Sluice's engine word count and grouped count (Benchmarks/, package-benchmark, local[2]) next to their C floors
# (Benchmarks/Limits/: hand-written loops, two threads, no engine), and the word count whose closure makes its own
# Strings next to that closure run alone on two threads (and the standard library's split it starts with, alone) and
# to the same count written by hand (the closure and a [String: Int] on each of two threads, merged), run one after
# the other in this session.
# Read the ratio: machines of one kind differ 2-3x in absolute figures, a ratio from one run is stable.
#   scripts/floors.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cc -O3 -o "$scratch/wordcount" Benchmarks/Limits/wordcount.c -lpthread
cc -O3 -o "$scratch/grouped_count" Benchmarks/Limits/grouped_count.c -lpthread
# The median of the two-thread run, in millions a second.
# (grouped_count: its first two-thread line, the input Benchmarks/ uses: i * 2654435761, a plain table.)
floor() { "$@" | awk '/RESULT/ && / 2T / && !/bytes/ { for (i = 1; i <= NF; i++) if ($i == "median") print $(i + 1) }' | head -1; }
c_words=$(floor "$scratch/wordcount" 20000000 3)
c_rows=$(floor "$scratch/grouped_count" 50000000 3)

# The suite's binary runs directly (see scripts/lib/suite.sh): under `swift package benchmark` the malloc
# interposer makes every allocation slower, which the owned-String count (two arrays and ten Strings a line) pays
# far more than the others (10.6M words/s under it against 14.1M without, the same build).
. scripts/lib/suite.sh
build_suite floors Execution "$scratch/build.log"
suite_p50s Execution \
    --filter 'Word-count,10M-words,local.2.' --filter 'Grouped-count,50M-Ints,local.2.' \
    --filter 'Word-count-owned-Strings,10M-words,local.2.' --filter 'Owned-String-closure-alone,10M-words,2-threads' \
    --filter 'Owned-String-split-alone,10M-words,2-threads' \
    --filter 'Owned-String-count-by-hand,10M-words,2-threads' \
    > "$scratch/sluice.txt"
# The p50 wall clock (ms) of a benchmark.
p50() {
    local ms
    ms=$(awk -F'\t' -v name="$1/Time (wall clock)" '$1 == name { printf "%.1f\n", $2 / 1e6 }' "$scratch/sluice.txt")
    if [ -z "$ms" ]; then
        echo "floors: the Execution suite printed no figure for $1" >&2
        exit 1
    fi
    echo "$ms"
}
words_ms=$(p50 'Word-count,10M-words,local[2]')
rows_ms=$(p50 'Grouped-count,50M-Ints,local[2]')
owned_ms=$(p50 'Word-count-owned-Strings,10M-words,local[2]')
closure_ms=$(p50 'Owned-String-closure-alone,10M-words,2-threads')
split_ms=$(p50 'Owned-String-split-alone,10M-words,2-threads')
by_hand_ms=$(p50 'Owned-String-count-by-hand,10M-words,2-threads')

awk -v cw="$c_words" -v cr="$c_rows" -v wm="$words_ms" -v rm="$rows_ms" -v om="$owned_ms" -v clm="$closure_ms" \
    -v hm="$by_hand_ms" -v spm="$split_ms" '
# Millions a second of n items done in ms milliseconds.
function rate(n, ms) { return n / (ms / 1000) / 1e6 }
BEGIN {
    sw = rate(10e6, wm); sr = rate(50e6, rm); so = rate(10e6, om); sc = rate(10e6, clm)
    printf "%-34s %10s %10s %8s\n", "workload (local[2])", "Sluice", "C floor", "ratio"
    printf "%-34s %8.1f M %8.1f M %7.0f%%\n", "word count, words/s", sw, cw, 100 * sw / cw
    printf "%-34s %8.1f M %8.1f M %7.0f%%\n", "grouped count, rows/s", sr, cr, 100 * sr / cr
    # Its floor is the closure itself (its String per word), run alone on two threads: no engine beats that.
    printf "%-34s %8.1f M %8.1f M %7.0f%%  (floor: the closure alone)\n", "owned-String word count, words/s", so, sc,
        100 * so / sc
    # The first half of the closure, the standard library split of each line into an array of slices, alone.
    ss = rate(10e6, spm)
    printf "%-34s %8s   %8.1f M %8s  (its split alone, no String made)\n", "  of which", "", ss, ""
    # What a program with no engine gets: the same closure and a [String: Int] a thread, merged.
    sh = rate(10e6, hm)
    printf "%-34s %8.1f M %8.1f M %7.0f%%  (the same count by hand: [String: Int] a thread)\n",
        "  next to a program with no engine", so, sh, 100 * so / sh
}'
