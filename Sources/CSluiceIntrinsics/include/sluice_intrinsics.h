#ifndef SLUICE_INTRINSICS_H
#define SLUICE_INTRINSICS_H

/// Asks the CPU to bring the cache line holding `address` into cache, to be written. A hint: never faults,
/// whatever the address. Swift has no prefetch of its own; large hash tables use this to overlap the cache
/// misses of lookups a few records ahead.
static inline void sluice_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

/// As `sluice_prefetch_for_write`, for a line that will only be read.
static inline void sluice_prefetch(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Tells the CPU the caller is in a spin-wait loop (x86 `pause`, Arm `yield`): the loop then spins slower and
/// leaves the core's resources to its other hardware thread.
static inline void sluice_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#include <signal.h>
#include <sys/prctl.h>

/// Has the kernel send `signal` to this process when the thread that made it ends (prctl's
/// PR_SET_PDEATHSIG, which is variadic and so out of Swift's reach): a helper process started by another
/// ends with it, even when that one crashed. Returns prctl's result (0, or -1 with errno).
static inline int sluice_set_parent_death_signal(int signal) {
    return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0);
}
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, for a program that has a main of its own (SluiceFuzz, which scripts/fuzz.sh links with
/// libFuzzer's no-main library; defined only in that build): runs the fuzzing loop over `callback` with the
/// command-line options libFuzzer reads.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
#endif
