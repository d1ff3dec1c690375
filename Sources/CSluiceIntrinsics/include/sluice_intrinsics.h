#ifndef SLUICE_INTRINSICS_H
#define SLUICE_INTRINSICS_H

/// Asks the CPU to bring the cache line holding `address` into cache, to be written. A hint: never faults,
/// whatever the address. Swift has no prefetch of its own; large hash tables use this to overlap the cache
/// misses of lookups a few records ahead.
static inline void sluice_prefetch_for_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}
#endif
