#include "sluice_checksum.h"
#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
    }
}

// Slicing-by-8: the portable path.
static uint32_t crc32c_software(uint32_t crc, const unsigned char *p, size_t n) {
    pthread_once(&table_once, build_table);
    crc = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= crc;
        crc = table[7][w & 0xFF] ^ table[6][(w >> 8) & 0xFF] ^ table[5][(w >> 16) & 0xFF] ^
              table[4][(w >> 24) & 0xFF] ^ table[3][(w >> 32) & 0xFF] ^ table[2][(w >> 40) & 0xFF] ^
              table[1][(w >> 48) & 0xFF] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
    return ~crc;
}

// GF(2) operators (zlib's crc32_combine method, with the Castagnoli polynomial): the CRC of A followed by B
// is shift(crc(A), |B|) ^ crc(B), where shift appends |B| zero bytes. Three lanes of the crc32 instruction
// run in parallel (its latency is 3 cycles, its throughput one per cycle) and are joined with a precomputed
// operator for one lane's length.
enum { LANE = 8192 };
static uint32_t lane_shift[32];
static pthread_once_t lane_once = PTHREAD_ONCE_INIT;

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1) sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_square(uint32_t *square, const uint32_t *mat) {
    for (int n = 0; n < 32; n++) square[n] = gf2_times(mat, mat[n]);
}

static void build_lane_shift(void) {
    uint32_t a[32], b[32];
    a[0] = 0x82F63B78u;  // the operator for one zero bit
    for (int n = 1; n < 32; n++) a[n] = 1u << (n - 1);
    // Square log2(LANE * 8) = 16 times: 2^16 zero bits = LANE zero bytes.
    for (int i = 0; i < 16; i += 2) {
        gf2_square(b, a);
        gf2_square(a, b);
    }
    memcpy(lane_shift, a, sizeof a);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const unsigned char *p, size_t n) {
    if (n >= 3 * LANE) pthread_once(&lane_once, build_lane_shift);
    while (n >= 3 * LANE) {
        uint64_t a = (uint32_t)~crc, b = 0xFFFFFFFFu, d = 0xFFFFFFFFu;
        for (size_t i = 0; i < LANE; i += 8) {
            uint64_t x, y, z;
            memcpy(&x, p + i, 8); memcpy(&y, p + LANE + i, 8); memcpy(&z, p + 2 * LANE + i, 8);
            a = __builtin_ia32_crc32di(a, x);
            b = __builtin_ia32_crc32di(b, y);
            d = __builtin_ia32_crc32di(d, z);
        }
        uint32_t ab = gf2_times(lane_shift, ~(uint32_t)a) ^ ~(uint32_t)b;
        crc = gf2_times(lane_shift, ab) ^ ~(uint32_t)d;
        p += 3 * LANE;
        n -= 3 * LANE;
    }
    uint64_t c = (uint32_t)~crc;
    while (n >= 32) {
        uint64_t a, b, d, e;
        memcpy(&a, p, 8); memcpy(&b, p + 8, 8); memcpy(&d, p + 16, 8); memcpy(&e, p + 24, 8);
        c = __builtin_ia32_crc32di(c, a);
        c = __builtin_ia32_crc32di(c, b);
        c = __builtin_ia32_crc32di(c, d);
        c = __builtin_ia32_crc32di(c, e);
        p += 32;
        n -= 32;
    }
    while (n >= 8) {
        uint64_t a;
        memcpy(&a, p, 8);
        c = __builtin_ia32_crc32di(c, a);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

static int hardware_available(void) {
#if defined(__x86_64__)
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
#else
    return 0;
#endif
}

uint32_t sluice_crc32c_portable(uint32_t crc, const void *data, size_t length) {
    return crc32c_software(crc, (const unsigned char *)data, length);
}

uint32_t sluice_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    static int hw = -1;
    int h = __atomic_load_n(&hw, __ATOMIC_RELAXED);
    if (h < 0) {
        h = hardware_available();
        __atomic_store_n(&hw, h, __ATOMIC_RELAXED);
    }
    if (h) return crc32c_hardware(crc, (const unsigned char *)data, length);
#endif
    return crc32c_software(crc, (const unsigned char *)data, length);
}
