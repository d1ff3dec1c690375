#ifndef SLUICE_CHECKSUM_H
#define SLUICE_CHECKSUM_H
#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli), the checksum of iSCSI, ext4 and RocksDB. `crc` is the value returned for the
/// bytes before these (0 to start). Uses the SSE4.2 instruction where the CPU has it, a table otherwise.
uint32_t sluice_crc32c(uint32_t crc, const void *data, size_t length);

/// The same checksum by table lookups only (the reference the fast path is tested against).
uint32_t sluice_crc32c_portable(uint32_t crc, const void *data, size_t length);
#endif
