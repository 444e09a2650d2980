#ifndef VRIFT_UTIL_H
#define VRIFT_UTIL_H
#include <stddef.h>
#include <stdint.h>

int64_t now_ms(void);
void sleep_ms(int ms);
/* Full write to a blocking fd, retrying short writes and EINTR. */
int write_all(int fd, const void *p, size_t n);
/* Integer env var with a default; junk or negative values fall back to the default. */
int64_t env_ms(const char *name, int64_t dflt);
/* An on/off switch (VRIFT_DISABLE, VRIFT_DEBUG): unset, empty, 0/false/no/off (any case)
 * is off, anything else on, as ipc/env-flag.ts reads it. */
int env_flag(const char *name);
int mkdir_p(const char *path, unsigned mode);
/* Exits the way the compiler did: with its code, or killed by the same signal (no core). */
void exit_like(int code, int sig) __attribute__((noreturn));

/* Diagnostics go to $VRIFT_HOME/log/shim.log, never to the compiler's stdout/stderr. */
void log_init(const char *home);
void dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Always appended to $VRIFT_HOME/log/fallback.ndjson: why this call bypassed the cache.
 * reason is a fixed identifier (connect, timeout, malformed_reply, write_outputs, run, done, split). */
void fallback(const char *reason);

#endif
