// The C floors of the headline workloads: hand-written loops with no engine, run by streambench in the same
// process as the job it measures, so that a report gives Sluice's figure as a share of what this machine can do
// (machines of one kind differ by 2-3x; a ratio from one run is stable, an absolute figure is not).
// Benchmarks/Limits/wordcount.c runs the same word count on its own.
#pragma once
#include <stddef.h>

// Word count: lines of 10 words "w0".."w9999" (uniform), split on spaces and counted in an open-addressing
// table, on `threads` (1 or 2) threads with private tables merged at the end. Fills `rates` with `reps` figures
// in words per second (after one warm-up run). Returns 0, or -1 when memory or a thread could not be had or the
// count came out wrong.
int sluice_limit_wordcount(size_t nwords, int threads, int reps, double *rates);

// Grouped count: n integers i * 2654435761, a count per value % 1000, on `threads` (1 or 2) threads with
// private counters merged at the end. Fills `rates` with `reps` figures in rows per second (after a warm-up).
// Returns 0, or -1 as above.
int sluice_limit_grouped_count(size_t n, int threads, int reps, double *rates);
