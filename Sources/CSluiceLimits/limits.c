#define _GNU_SOURCE
#include "include/sluice_limits.h"
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t next_random(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    return *s = x;
}

// Runs `work(tasks[k])` for k < threads, on threads when there are two; 0 or -1.
static int run_tasks(void *(*work)(void *), void *tasks, size_t task_size, int threads) {
    if (threads == 1) { work(tasks); return 0; }
    pthread_t th[2];
    for (int k = 0; k < threads; k++)
        if (pthread_create(&th[k], NULL, work, (char *)tasks + (size_t)k * task_size) != 0) {
            for (int j = 0; j < k; j++) pthread_join(th[j], NULL);
            return -1;
        }
    for (int k = 0; k < threads; k++) pthread_join(th[k], NULL);
    return 0;
}

// MARK: word count

#define SLOTS (1u << 15) // 32768 slots for 10000 distinct words: load ~0.31

typedef struct {
    uint64_t hash;
    uint32_t off, len;
    uint64_t count;
} slot_t;

typedef struct {
    const uint8_t *text;
    size_t begin, end;
    slot_t *table;
} words_task_t;

static inline void upsert(slot_t *table, const uint8_t *text, uint32_t off, uint32_t len, uint64_t h, uint64_t add) {
    uint32_t i = (uint32_t)(h ^ (h >> 29)) & (SLOTS - 1);
    for (;;) {
        slot_t *e = &table[i];
        if (e->count == 0) { e->hash = h; e->off = off; e->len = len; e->count = add; return; }
        if (e->hash == h && e->len == len && memcmp(text + e->off, text + off, len) == 0) { e->count += add; return; }
        i = (i + 1) & (SLOTS - 1);
    }
}

__attribute__((noinline))
static void count_words(const uint8_t *text, size_t begin, size_t end, slot_t *table) {
    size_t i = begin;
    while (i < end) {
        while (i < end && text[i] <= ' ') i++;
        if (i >= end) break;
        size_t start = i;
        uint64_t h = 1469598103934665603ULL;
        while (i < end && text[i] > ' ') { h = (h ^ text[i]) * 1099511628211ULL; i++; }
        upsert(table, text, (uint32_t)start, (uint32_t)(i - start), h, 1);
    }
}

static void *count_words_task(void *arg) {
    words_task_t *t = arg;
    memset(t->table, 0, SLOTS * sizeof(slot_t));
    count_words(t->text, t->begin, t->end, t->table);
    return NULL;
}

int sluice_limit_wordcount(size_t nwords, int threads, int reps, double *rates) {
    if (threads < 1 || threads > 2 || nwords == 0 || nwords > 500000000) return -1;
    uint8_t *text = malloc(nwords * 6 + 16);
    slot_t *tables[2] = {malloc(SLOTS * sizeof(slot_t)), malloc(SLOTS * sizeof(slot_t))};
    int result = (text && tables[0] && tables[1]) ? 0 : -1;
    size_t n = 0;
    uint64_t s = 0x2545F4914F6CDD1DULL;
    for (size_t w = 0; result == 0 && w < nwords; w++) {
        unsigned v = (unsigned)(next_random(&s) % 10000);
        char digits[8];
        int k = 0;
        do { digits[k++] = (char)('0' + v % 10); v /= 10; } while (v);
        text[n++] = 'w';
        while (k) text[n++] = (uint8_t)digits[--k];
        text[n++] = (w % 10 == 9) ? '\n' : ' ';
    }
    for (int r = -1; result == 0 && r < reps; r++) {  // r = -1: warm-up
        words_task_t tasks[2];
        size_t middle = n / 2;
        while (middle < n && text[middle] > ' ') middle++;
        double start = seconds_now();
        for (int k = 0; k < threads; k++) {
            tasks[k] = (words_task_t){text, threads == 1 || k == 0 ? 0 : middle, threads == 1 || k == 1 ? n : middle, tables[k]};
        }
        if (run_tasks(count_words_task, tasks, sizeof tasks[0], threads) != 0) { result = -1; break; }
        if (threads == 2)
            for (uint32_t j = 0; j < SLOTS; j++)
                if (tables[1][j].count)
                    upsert(tables[0], text, tables[1][j].off, tables[1][j].len, tables[1][j].hash, tables[1][j].count);
        double elapsed = seconds_now() - start;
        uint64_t total = 0;
        for (uint32_t j = 0; j < SLOTS; j++) total += tables[0][j].count;
        if (total != nwords) result = -1;
        else if (r >= 0) rates[r] = (double)nwords / elapsed;
    }
    free(text);
    free(tables[0]);
    free(tables[1]);
    return result;
}

// MARK: grouped count

#define GROUPS 1000

typedef struct {
    const uint64_t *values;
    size_t n;
    uint64_t counts[GROUPS];
} grouped_task_t;

static void *count_groups_task(void *arg) {
    grouped_task_t *t = arg;
    memset(t->counts, 0, sizeof t->counts);
    for (size_t i = 0; i < t->n; i++) t->counts[t->values[i] % GROUPS]++;
    return NULL;
}

int sluice_limit_grouped_count(size_t n, int threads, int reps, double *rates) {
    if (threads < 1 || threads > 2 || n == 0 || n > 1000000000) return -1;
    uint64_t *values = malloc(n * sizeof(uint64_t));
    if (!values) return -1;
    for (size_t i = 0; i < n; i++) values[i] = (uint64_t)i * 2654435761ULL;
    int result = 0;
    for (int r = -1; result == 0 && r < reps; r++) {
        grouped_task_t tasks[2];
        size_t per = n / (size_t)threads;
        double start = seconds_now();
        for (int k = 0; k < threads; k++) {
            tasks[k].values = values + (size_t)k * per;
            tasks[k].n = k == threads - 1 ? n - (size_t)k * per : per;
        }
        if (run_tasks(count_groups_task, tasks, sizeof tasks[0], threads) != 0) { result = -1; break; }
        uint64_t total = 0;
        for (int k = 0; k < threads; k++)
            for (int j = 0; j < GROUPS; j++) total += tasks[k].counts[j];
        double elapsed = seconds_now() - start;
        if (total != n) result = -1;
        else if (r >= 0) rates[r] = (double)n / elapsed;
    }
    free(values);
    return result;
}
