#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

int64_t env_ms(const char *name, int64_t dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  char *end;
  long long v = strtoll(s, &end, 10);
  return (*end || v < 0) ? dflt : v;
}

int env_flag(const char *name) {
  const char *s = getenv(name);
  if (!s) return 0;
  while (*s == ' ' || *s == '\t') s++;
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
  static const char *const off[] = {"0", "false", "no", "off"};
  if (n == 0) return 0;
  for (size_t i = 0; i < sizeof off / sizeof *off; i++)
    if (strlen(off[i]) == n && strncasecmp(s, off[i], n) == 0) return 0;
  return 1;
}

int mkdir_p(const char *path, unsigned mode) {
  char tmp[PATH_MAX];
  size_t n = strlen(path);
  if (n >= sizeof tmp) { errno = ENAMETOOLONG; return -1; }
  memcpy(tmp, path, n + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST) return -1;
  return 0;
}

static char log_path[PATH_MAX];
static char fallback_path[PATH_MAX];

void log_init(const char *home) {
  if (snprintf(fallback_path, sizeof fallback_path, "%s/log/fallback.ndjson", home) >= (int)sizeof fallback_path) fallback_path[0] = 0;
  if (!env_flag("VRIFT_DEBUG")) return;
  char dir[PATH_MAX - 64];
  if (snprintf(dir, sizeof dir, "%s/log", home) >= (int)sizeof dir) return;
  if (mkdir_p(dir, 0700) != 0) return;
  snprintf(log_path, sizeof log_path, "%s/shim.log", dir);
}

/* One NDJSON line per call, written with a single append so concurrent shims
 * never interleave inside a line. */
void dbg(const char *fmt, ...) {
  if (!log_path[0]) return;
  int saved = errno;
  char msg[1024], line[2300];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  size_t n = (size_t)snprintf(line, sizeof line, "{\"ts\":%lld,\"ch\":\"shim\",\"pid\":%d,\"msg\":\"",
                              (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (int)getpid());
  for (const char *s = msg; *s && n < sizeof line - 8; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') { line[n++] = '\\'; line[n++] = (char)c; }
    else if (c < 0x20) n += (size_t)snprintf(line + n, 7, "\\u%04x", c);
    else line[n++] = (char)c;
  }
  memcpy(line + n, "\"}\n", 3);
  n += 3;
  int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    (void)!write(fd, line, n);
    close(fd);
  }
  errno = saved;
}

/* Always recorded, VRIFT_DEBUG or not: this call went around the cache (the daemon could
 * not be asked, or its answer could not be used). `vrift stats` counts these lines, so a
 * daemon too slow to answer shows up instead of silently costing hits. */
void fallback(const char *reason) {
  dbg("fallback: %s", reason);
  if (!fallback_path[0]) return;
  int saved = errno;
  char line[256];
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  int n = snprintf(line, sizeof line, "{\"ts\":%lld,\"pid\":%d,\"reason\":\"%s\"}\n",
                   (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (int)getpid(), reason);
  if (n > 0 && n < (int)sizeof line) {
    int fd = open(fallback_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
      char dir[PATH_MAX];
      snprintf(dir, sizeof dir, "%s", fallback_path);
      char *slash = strrchr(dir, '/');
      if (slash) { *slash = 0; if (mkdir_p(dir, 0700) == 0) fd = open(fallback_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600); }
    }
    if (fd >= 0) {
      (void)!write(fd, line, (size_t)n);
      close(fd);
    }
  }
  errno = saved;
}

void exit_like(int code, int sig) {
  if (sig > 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core); /* the compiler's crash is not ours to dump */
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
  }
  _exit(code & 0xff);
}
