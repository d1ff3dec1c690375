#ifndef SLUICE_CJEMALLOC_SHIM_H
#define SLUICE_CJEMALLOC_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <jemalloc/jemalloc.h>

// Function-like macros do not import into Swift; these wrap the ones Sluice uses.
static inline int sluice_mallocx_flags(unsigned arena, size_t alignment) {
    return MALLOCX_ARENA(arena) | MALLOCX_ALIGN(alignment) | MALLOCX_TCACHE_NONE;
}
#endif
