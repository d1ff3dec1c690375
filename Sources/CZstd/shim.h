#ifndef SLUICE_CZSTD_SHIM_H
#define SLUICE_CZSTD_SHIM_H
#include <zstd.h>

static inline unsigned sluice_zstd_is_error(size_t code) { return ZSTD_isError(code); }
#endif
