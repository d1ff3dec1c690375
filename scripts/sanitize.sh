#!/usr/bin/env bash
# Runs the tests under a sanitizer. The build links the system allocator (SLUICE_SYSTEM_ALLOCATOR=1): jemalloc
# replaces malloc in the whole process and cannot run beside a sanitizer's own allocator; in that build `Mutex`
# is a pthread mutex, which ThreadSanitizer understands (Sources/SluiceColumnar/Sanitizer/PthreadMutex.swift).
# Any report fails the run.
#   scripts/sanitize.sh thread         the concurrency suites (pool, shuffle, receivers and block generator,
#                                      receive memory, job scheduler, checkpoints, write-ahead log, listener bus,
#                                      monitoring) under ThreadSanitizer: what CI runs
#   scripts/sanitize.sh thread --all   every suite but Kafka's and the crash tests under ThreadSanitizer
#   scripts/sanitize.sh address        every suite under AddressSanitizer
# Under ThreadSanitizer the Kafka tests cannot run: librdkafka starts its threads with C11 `thrd_create`, which
# ThreadSanitizer does not intercept, so the first allocation on one of them crashes inside the sanitizer. The
# crash tests (each kills and restarts a sanitized child program, over a minute each) run only under
# AddressSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizer="${1:-}"
scope="${2:-}"
case "$sanitizer" in
thread)
    scratch=.build-tsan
    export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
    selection=(--skip 'Kafka|CrashRecovery')
    if [ "$scope" != "--all" ]; then
        selection+=(--filter 'PthreadMutex|WorkStealingPool|PoolWait|SpillTests|PersistTests|BlockGenerator|ReceiverTests|SocketStreamTests|BackpressureTests|RateControl|ReceiveMemory|LifecycleTests|StatefulOperationsTests|WindowOperationsTests|CheckpointTests|RecoveryTests|WriteAheadLogTests|ListenerTests|EventLogTests|StreamingStatusTests|MonitoringTests')
    fi
    ;;
address)
    scratch=.build-asan
    # LeakSanitizer is off: the Swift runtime keeps metadata and test-library caches until exit by design.
    # Freed memory waits in a 64 MB quarantine rather than the default 256 MB, so that the tests that bound
    # resident memory (ReceiveMemoryTests) measure Sluice rather than the sanitizer.
    export ASAN_OPTIONS="halt_on_error=1 detect_leaks=0 quarantine_size_mb=64 ${ASAN_OPTIONS:-}"
    selection=()
    ;;
*)
    echo "usage: scripts/sanitize.sh thread [--all] | address" >&2
    exit 2
    ;;
esac
export SLUICE_SYSTEM_ALLOCATOR=1
mkdir -p "$scratch"
log="$scratch/sanitize-build.log"
if ! swift build --build-tests --sanitize="$sanitizer" --scratch-path "$scratch" >"$log" 2>&1; then
    tail -30 "$log"
    echo "the $sanitizer-sanitized build failed (the whole log: $log)"
    exit 1
fi
swift test --skip-build --sanitize="$sanitizer" --scratch-path "$scratch" "${selection[@]}"
