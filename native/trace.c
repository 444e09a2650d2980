#include "trace.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void trace_start(trace_t *t) {
  if (getenv("VRIFT_SHIM_TRACE")) t->at[T_START] = mono_us();
}

void trace_mark(trace_t *t, int i) {
  if (t->at[T_START]) t->at[i] = mono_us();
}

void trace_write(const trace_t *t, const char *kind) {
  const char *f = getenv("VRIFT_SHIM_TRACE");
  if (!f || !t->at[T_START]) return;
  const int64_t *at = t->at;
  int64_t s = at[T_START], end = mono_us();
  char line[200];
  int n = snprintf(line, sizeof line, "%lld %lld %lld %lld %lld %s %lld %lld\n", (long long)s, (long long)(at[T_CONN] - s),
                   (long long)(at[T_ANSWER] - s), (long long)(at[T_RAN] ? at[T_RAN] - s : 0), (long long)(end - s), kind,
                   (long long)(at[T_COL] ? at[T_COL] - s : 0), (long long)(at[T_SENT] ? at[T_SENT] - s : 0));
  int fd = open(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0 && n > 0) {
    write_all(fd, line, (size_t)n);
    close(fd);
  }
}
