#!/usr/bin/env bash
# mapWithState's per-record cost (Benchmarks/ Streaming suite, local[2], 100,000 records a batch) next to its C
# floor (Benchmarks/Limits/state_lookup.c: the same table layout and prefetching, two threads, no engine), run
# one after the other in this session:
#   - at 1k keys, the operator's own cost per record (the batch's p50 / 100,000);
#   - the 10M-key job's extra time over the 100k-key job, next to the floor's extra time. Both sides run their
#     two sizes in turn, batch by batch (Sluice: one context with both jobs in every batch; the floor: its two
#     tables alternately), so that each difference comes from the same seconds of the machine.
#   scripts/state-floors.sh [ROUNDS]
# Each of ROUNDS rounds (default 3) runs the suite's two benchmarks and then the floor; each round's figures
# are printed, then their medians. This machine kind runs a job 1.5x slower for seconds at a time: a single
# round's figures move with it, the median of several rounds less.
# The suite's binary runs directly (see scripts/lib/suite.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: scripts/state-floors.sh [ROUNDS]: ROUNDS must be a positive whole number, got '$rounds'" >&2
    exit 2
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

. scripts/lib/suite.sh
cc -O2 -o "$scratch/state_lookup" Benchmarks/Limits/state_lookup.c -lpthread
build_suite state-floors Streaming "$scratch/build.log"

# p50 of a size's line ("state_lookup: KEYS keys, ... p50 N ...") in the floor's output.
floor() { awk -v keys="$1" '$2 == keys { for (i = 1; i <= NF; i++) if ($i == "p50") print $(i + 1) }' "$scratch/floor.txt"; }
# p50 of a metric of the suite's output (recorded in ns), in microseconds.
p50() { awk -F'\t' -v metric="$1" '$1 == metric { printf "%.0f\n", $2 / 1000 }' "$scratch/sluice.txt"; }

printf "%-6s %14s %14s %14s %12s %12s %8s\n" "round" "1k ns/record" "100k job us" "10M job us" "floor 100k" "floor 10M" "ratio"
: > "$scratch/rounds.txt"
for round in $(seq "$rounds"); do
    # The 1k benchmark's wall clock; the in-turn benchmark's two jobs, recorded in ns.
    suite_p50s Streaming --filter 'mapWithState,1k-keys.*' --filter 'mapWithState,100k-keys-then-10M-keys.*' \
        > "$scratch/sluice.txt"
    s1k=$(p50 "mapWithState,1k-keys,100k-records-a-batch/Time (wall clock)")
    s100k=$(p50 "mapWithState,100k-keys-then-10M-keys,100k-records-a-batch-each/100k-keys job (ns)")
    s10m=$(p50 "mapWithState,100k-keys-then-10M-keys,100k-records-a-batch-each/10M-keys job (ns)")
    if [ -z "$s1k" ] || [ -z "$s100k" ] || [ -z "$s10m" ]; then
        echo "state-floors: round $round: the Streaming suite printed no mapWithState figures" >&2
        cat "$scratch/sluice.txt" >&2
        exit 1
    fi
    "$scratch/state_lookup" 100000 10000000 > "$scratch/floor.txt"
    c100k=$(floor 100000)
    c10m=$(floor 10000000)
    echo "$s1k $s100k $s10m $c100k $c10m" | tee -a "$scratch/rounds.txt" | awk -v round="$round" '{
        printf "%-6s %14.1f %14d %14d %12d %12d %8.2f\n", round, $1 * 1000 / 100000, $2, $3, $4, $5, ($3 - $2) / ($5 - $4)
    }'
done

# Medians over the rounds: of the 1k figure, and of each round's ratio (and its extra times).
sort -n -k1,1 "$scratch/rounds.txt" | awk '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; printf "\nmedian over %d rounds: 1k keys %.1f ns a record", NR, m * 1000 / 100000 }'
awk '{ print ($3 - $2) / ($5 - $4), $3 - $2, $5 - $4 }' "$scratch/rounds.txt" | sort -g -k1,1 | awk '
    { r[NR] = $1; s[NR] = $2; c[NR] = $3 }
    END { i = int((NR + 1) / 2); printf "; 10M extra over 100k %d us against the floor'"'"'s %d us, ratio %.2f\n", s[i], c[i], r[i] }'
