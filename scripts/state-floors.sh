#!/usr/bin/env bash
# mapWithState's per-record cost (Benchmarks/ Streaming suite, local[2], 100,000 records a batch) next to its C
# floor (Benchmarks/Limits/state_lookup.c: the same table layout and prefetching, two threads, no engine), run
# one after the other in this session:
#   - at 1k keys, the operator's own cost per record (the batch's p50 / 100,000);
#   - the 10M-key batch's extra time over the 100k-key batch, next to the floor's extra time.
#   scripts/state-floors.sh
# The suite's binary runs directly (package-benchmark's debug mode: every iteration, its percentiles on
# stdout), not through `swift package benchmark`, whose malloc interposer (malloc-interposer 1.6.1) crashes this
# suite on Linux when it frees a page-aligned block it did not allocate.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cc -O2 -o "$scratch/state_lookup" Benchmarks/Limits/state_lookup.c -lpthread
(cd Benchmarks && swift build -c release --product Streaming >/dev/null)
bin=$(cd Benchmarks && swift build -c release --show-bin-path)

# "name p50_us" for each benchmark: the value at the first percentile line >= 0.5 of its wall-clock histogram.
LD_LIBRARY_PATH="$bin" "$bin/Streaming" --filter 'mapWithState.*' 2>&1 | tr -d '\r' | awk '
    /Debug results for/ { name = $4; sub(/:$/, "", name) }
    /Time \(wall clock\)/ { inTime = 1; done = 0; next }
    inTime && !done && $1 ~ /^[0-9.]+$/ && $2 >= 0.5 { printf "%s %.0f\n", name, $1 / 1000; done = 1; inTime = 0 }
' > "$scratch/sluice.txt"
floor() { "$scratch/state_lookup" "$1" | awk '{ for (i = 1; i <= NF; i++) if ($i == "p50") print $(i + 1) }'; }
c100k=$(floor 100000)
c10m=$(floor 10000000)
p50() { awk -v name="mapWithState,$1-keys,100k-records-a-batch" '$1 == name { print $2 }' "$scratch/sluice.txt"; }
s1k=$(p50 1k)
s100k=$(p50 100k)
s10m=$(p50 10M)
if [ -z "$s1k" ] || [ -z "$s100k" ] || [ -z "$s10m" ]; then
    echo "state-floors: the Streaming suite printed no mapWithState figures" >&2
    cat "$scratch/sluice.txt" >&2
    exit 1
fi

awk -v s1k="$s1k" -v s100k="$s100k" -v s10m="$s10m" -v c100k="$c100k" -v c10m="$c10m" 'BEGIN {
    printf "%-46s %10s %10s\n", "mapWithState, 100k records a batch (local[2])", "Sluice", "C floor"
    printf "%-46s %7.1f ns %10s\n", "1k keys, per record (p50 batch / 100k)", s1k * 1000 / 100000, "-"
    printf "%-46s %7d us %7d us\n", "100k keys, a batch (p50)", s100k, c100k
    printf "%-46s %7d us %7d us\n", "10M keys, a batch (p50)", s10m, c10m
    printf "%-46s %7d us %7d us  ratio %.2f\n", "10M keys extra over 100k", s10m - s100k, c10m - c100k, (s10m - s100k) / (c10m - c100k)
}'
