#ifndef VRIFT_TRACE_H
#define VRIFT_TRACE_H
#include <stdint.h>

/* VRIFT_SHIM_TRACE=FILE: one line per call with where its time went: the start (µs,
 * CLOCK_MONOTONIC), then µs since it: connected, answered, compiler done (0 unless run),
 * the end; the kind (hit, run1 = one-way report, run2 = waited for the daemon); report
 * encoded (files read, -MMD's depfile written) and report sent (0 unless run).
 * For profiling a build (bench/README.md); nothing is measured without it. */
enum { T_START, T_CONN, T_ANSWER, T_RAN, T_COL, T_SENT, T_N };

/* Owned by main: all zero, and nothing is marked, unless VRIFT_SHIM_TRACE is set. */
typedef struct {
  int64_t at[T_N];
} trace_t;

void trace_start(trace_t *t);
void trace_mark(trace_t *t, int i);
/* Appends the line; `kind` as above. */
void trace_write(const trace_t *t, const char *kind);

#endif
