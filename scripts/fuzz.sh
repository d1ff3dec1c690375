#!/usr/bin/env bash
# Fuzzes every decoder of bytes from disk or the network (Sources/SluiceTesting/FuzzTargets.swift: block, row
# codec, zstd envelope, framed file, spill file, checkpoint, write-ahead log segment, properties file, socket
# framing of lines, delimited and fixed-length records) with libFuzzer and
# AddressSanitizer, from seeds written by Sluice's own writers. An input that crashes, hangs (10 s), or makes
# one allocation over 512 MB (a length field trusted before it was checked against the bytes present) is a
# finding: saved in .build-fuzz/findings/<target>/, and the script fails. Replay one with
# `swift run SluiceFuzz replay TARGET FILE`; keep it as a test in Tests/SluiceTests/Fuzz/Regressions/<target>/.
#   scripts/fuzz.sh [SECONDS]   each target for SECONDS (60 by default)
#   scripts/fuzz.sh --ci        each target for 20,000 inputs from a fixed seed (what CI runs: bounded, repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--ci" ]; then
    limit=(-runs=20000 -seed=1)
    what="20000 inputs"
else
    limit=(-max_total_time="${1:-60}")
    what="${1:-60} s"
fi
work=.build-fuzz
mkdir -p "$work"

# Seeds, from a plain build.
swift build --product SluiceFuzz >/dev/null
targets=$(.build/debug/SluiceFuzz targets)
rm -rf "$work/seeds"
.build/debug/SluiceFuzz seeds "$work/seeds"

# The fuzzing build: the system allocator (jemalloc cannot run beside AddressSanitizer), ASan, libFuzzer's
# coverage, and libFuzzer without its main (SwiftPM links the program's own main, which runs libFuzzer's
# driver: `-sanitize=fuzzer` would bring a second main).
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swiftc)")")")
libfuzzer=$(ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a | head -1)
if ! SLUICE_SYSTEM_ALLOCATOR=1 swift build --product SluiceFuzz --scratch-path "$work" \
    -Xswiftc -sanitize=address -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp \
    -Xswiftc -parse-as-library -Xswiftc -DSLUICE_FUZZING -Xlinker "$libfuzzer" -Xlinker -lstdc++ \
    >"$work/build.log" 2>&1; then
    grep -v "Cannot export local symbol" "$work/build.log" | tail -30
    echo "the fuzzing build failed (the whole log: $work/build.log)"
    exit 1
fi

status=0
for target in $targets; do
    corpus="$work/corpus/$target"
    findings="$work/findings/$target"
    mkdir -p "$corpus" "$findings"
    log="$work/$target.log"
    if SLUICE_FUZZ_TARGET=$target "$work/debug/SluiceFuzz" "$corpus" "$work/seeds/$target" "${limit[@]}" \
        -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512 -artifact_prefix="$findings/" -print_final_stats=1 \
        >"$log" 2>&1; then
        executions=$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")
        echo "$target: $executions executions ($what), no finding"
    else
        echo "$target: FINDING: see $log and $findings/"
        status=1
    fi
done
exit $status
