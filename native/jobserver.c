#define _GNU_SOURCE
#include "jobserver.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The last --jobserver-auth= (or the older --jobserver-fds=) in MAKEFLAGS: make appends the
 * one that counts. Its value runs to the next space. */
static int auth_value(const char *flags, char *out, size_t cap) {
  const char *best = NULL;
  static const char *const names[] = {"--jobserver-auth=", "--jobserver-fds="};
  for (int k = 0; k < 2; k++)
    for (const char *p = flags; (p = strstr(p, names[k])); p += strlen(names[k]))
      if (!best || p > best) best = p + strlen(names[k]);
  if (!best) return -1;
  size_t n = strcspn(best, " ");
  if (n == 0 || n >= cap) return -1;
  memcpy(out, best, n);
  out[n] = 0;
  return 0;
}

static int parse_fd(const char *s, char **end) {
  errno = 0;
  long v = strtol(s, end, 10);
  return errno || *end == s || v < 0 || v > 1 << 20 ? -1 : (int)v;
}

int js_open(jobserver *js, const char *makeflags) {
  memset(js, 0, sizeof *js);
  js->rfd = js->wfd = -1;
  char v[4096];
  if (!makeflags || auth_value(makeflags, v, sizeof v) != 0) return -1;
  if (!strncmp(v, "fifo:", 5)) {
    /* Our own description of the fifo: O_NONBLOCK on it is nobody else's business. */
    int fd = open(v + 5, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return -1;
    if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode)) {
      close(fd);
      return -1;
    }
    js->rfd = js->wfd = fd;
    js->own_w = 1;
    return 0;
  }
  char *e;
  int r = parse_fd(v, &e);
  if (r < 0 || *e != ',') return -1;
  int w = parse_fd(e + 1, &e);
  if (w < 0 || *e) return -1;
  /* Both ends of one pipe, still open: a closed number may have been reused for anything. */
  struct stat rs, ws;
  if (fstat(r, &rs) != 0 || fstat(w, &ws) != 0 || !S_ISFIFO(rs.st_mode) || rs.st_ino != ws.st_ino || rs.st_dev != ws.st_dev ||
      (fcntl(r, F_GETFL) & O_ACCMODE) != O_RDONLY || (fcntl(w, F_GETFL) & O_ACCMODE) != O_WRONLY)
    return -1;
  /* The read end reopened: make and the other clients share r's description, and making
   * that non-blocking would change their reads. */
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", r);
  int fd = open(self, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  js->rfd = fd;
  js->wfd = w;
  return 0;
}

int js_take(jobserver *js) {
  if (js->rfd < 0 || js->held >= JS_MAX_HELD) return 0;
  unsigned char c;
  ssize_t n;
  while ((n = read(js->rfd, &c, 1)) < 0 && errno == EINTR) {}
  if (n != 1) return 0;
  js->tok[js->held++] = c;
  return 1;
}

void js_give(jobserver *js) {
  if (js->held == 0) return;
  unsigned char c = js->tok[--js->held];
  ssize_t n;
  while ((n = write(js->wfd, &c, 1)) < 0 && errno == EINTR) {}
}

void js_close(jobserver *js) {
  while (js->held > 0) js_give(js);
  if (js->rfd >= 0) close(js->rfd);
  if (js->own_w && js->wfd >= 0 && js->wfd != js->rfd) close(js->wfd);
  js->rfd = js->wfd = -1;
}
