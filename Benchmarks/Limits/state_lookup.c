// The floor under `mapWithState` on a large state: per-record lookups and in-place updates in an
// open-addressing table of 32-byte slots (key, state, last update, tag), the layout of Sluice's StateTable,
// with the same prefetch 16 records ahead, on two threads with a table each (two partitions). No engine, no
// user function: the memory system's cost of touching KEYS keys' worth of state at random.
//
//   cc -O2 -o /tmp/state_lookup Benchmarks/Limits/state_lookup.c -lpthread
//   /tmp/state_lookup 100000 10000000
//
// Prints the time of a batch of 100,000 records (50,000 per thread) over 300 batches, for each size given
// (default 10M keys). Given two sizes, their batches take turns, as the two jobs of the Streaming suite's
// `mapWithState,100k-keys-then-10M-keys,...` benchmark do; `scripts/state-floors.sh` runs both.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

typedef struct { uint64_t key, state, updated, used; } slot_t;
typedef struct { slot_t *slots; uint64_t mask; const uint64_t *keys; int n; double seconds; } job_t;

enum { PER_THREAD = 50000, AHEAD = 16, BATCHES = 300 };

static uint64_t mix(uint64_t z) {  // SplitMix64's finalizer, as Sluice's Int key hash
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t *find(slot_t *slots, uint64_t mask, uint64_t key, uint64_t hash) {
    uint64_t s = hash & mask;
    while (slots[s].used && slots[s].key != key) s = (s + 1) & mask;
    if (!slots[s].used) { slots[s].used = 1; slots[s].key = key; }
    return &slots[s].state;
}

static void *run(void *argument) {
    job_t *job = argument;
    uint64_t *hashes = malloc(sizeof(uint64_t) * job->n);
    double start = now();
    for (int i = 0; i < job->n; i++) hashes[i] = mix(job->keys[i]);
    for (int i = 0; i < job->n; i++) {
        if (i + AHEAD < job->n) {
            const char *ahead = (const char *)&job->slots[hashes[i + AHEAD] & job->mask];
            __builtin_prefetch(ahead, 1, 3);
            __builtin_prefetch(ahead + 64, 1, 3);
        }
        uint64_t *state = find(job->slots, job->mask, job->keys[i], hashes[i]);
        state[0] += 1;  // the state
        state[1] = i;   // its last update
    }
    job->seconds = now() - start;
    free(hashes);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/// One state: a table per thread holding every key of `keys` (of parity t in thread t's table).
typedef struct { long keys; uint64_t capacity; slot_t *tables[2]; double times[BATCHES]; uint64_t random; } state_t;

static int make_state(state_t *state, long keys) {
    state->keys = keys;
    state->capacity = 16;  // per thread, at most 3/4 full, as StateTable grows
    while (state->capacity * 3 / 4 < (uint64_t)keys / 2) state->capacity *= 2;
    for (int t = 0; t < 2; t++) {
        size_t bytes = state->capacity * sizeof(slot_t);
        state->tables[t] = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (state->tables[t] == MAP_FAILED) { perror("mmap"); return -1; }
        madvise(state->tables[t], bytes, MADV_HUGEPAGE);
        memset(state->tables[t], 0, bytes);
    }
    for (long k = 0; k < keys; k++) find(state->tables[k & 1], state->capacity - 1, k, mix(k));  // every key
    state->random = 5;
    return 0;
}

/// Runs batch `b` of `state`: 50,000 random keys a thread, the two threads at once; records the slower one's time.
static void run_batch(state_t *state, int b) {
    static uint64_t batch[2][PER_THREAD];
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < PER_THREAD; i++) {
            state->random = mix(state->random + 0x9E3779B97F4A7C15ULL);
            uint64_t k = (state->random % (uint64_t)state->keys) & ~1ULL;  // thread t owns the keys of parity t
            batch[t][i] = k + t < (uint64_t)state->keys ? k + t : k;
        }
    }
    job_t jobs[2];
    pthread_t threads[2];
    for (int t = 0; t < 2; t++) {
        jobs[t] = (job_t){state->tables[t], state->capacity - 1, batch[t], PER_THREAD, 0};
        pthread_create(&threads[t], NULL, run, &jobs[t]);
    }
    for (int t = 0; t < 2; t++) pthread_join(threads[t], NULL);
    state->times[b] = (jobs[0].seconds > jobs[1].seconds ? jobs[0].seconds : jobs[1].seconds) * 1e6;
}

int main(int argc, char **argv) {
    int sizes = argc > 2 ? 2 : 1;
    static state_t states[2];
    for (int s = 0; s < sizes; s++) {
        long keys = argc > 1 + s ? atol(argv[1 + s]) : 10000000;
        if (keys < 2) { fprintf(stderr, "usage: state_lookup [KEYS [KEYS2]] (each at least 2)\n"); return 2; }
        if (make_state(&states[s], keys) != 0) return 1;
    }
    for (int b = 0; b < BATCHES; b++) {
        for (int s = 0; s < sizes; s++) run_batch(&states[s], b);  // two sizes take turns, batch by batch
    }
    for (int s = 0; s < sizes; s++) {
        double *times = states[s].times;
        qsort(times, BATCHES, sizeof(double), by_value);
        printf("state_lookup: %ld keys, 100k records a batch on 2 threads: p0 %.0f  p25 %.0f  p50 %.0f  p90 %.0f us\n",
               states[s].keys, times[0], times[BATCHES / 4], times[BATCHES / 2], times[BATCHES * 9 / 10]);
    }
    return 0;
}
