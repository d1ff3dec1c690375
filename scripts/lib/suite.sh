# Helpers for the scripts that run a Benchmarks/ suite's binary directly: package-benchmark's debug mode, every
# iteration, its percentiles on stdout (not `swift package benchmark`, whose malloc interposer slows every
# allocation and crashes the Streaming suite on Linux when it frees a page-aligned block it did not allocate).
# Source it from the repository's root: `. scripts/lib/suite.sh`.

# build_suite SCRIPT SUITE LOG: builds SUITE (release) and sets suite_bin to the directory its binary is in; when the
# build fails, prints its last lines (under SCRIPT's name) and exits 1.
build_suite() {
    if ! (cd Benchmarks && swift build -c release --product "$2" >"$3" 2>&1); then
        echo "$1: building the Benchmarks' $2 suite failed:" >&2
        tail -20 "$3" >&2
        exit 1
    fi
    suite_bin=$(cd Benchmarks && swift build -c release --show-bin-path)
}

# suite_p50s SUITE ARGS...: runs SUITE's binary with ARGS (its --filter options) and prints
# "benchmark/metric<TAB>p50" for every metric of every benchmark it ran: the value at the first percentile line
# >= 0.5 of the metric's histogram, in the unit the suite records it (wall clock: nanoseconds).
suite_p50s() {
    LD_LIBRARY_PATH="$suite_bin" "$suite_bin/$1" "${@:2}" 2>&1 | tr -d '\r' | awk '
        /Debug results for/ { bench = $4; sub(/:$/, "", bench) }
        /^[A-Za-z0-9].*:$/ && !/Debug results/ { metric = bench "/" $0; sub(/:$/, "", metric); inMetric = 1; done = 0; next }
        inMetric && !done && $1 ~ /^[0-9.]+$/ && $2 >= 0.5 { printf "%s\t%s\n", metric, $1; done = 1; inMetric = 0 }
    '
}
