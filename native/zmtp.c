#include "zmtp.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

#define FLAG_MORE 0x01
#define FLAG_LONG 0x02
#define FLAG_CMD 0x04
/* A reply carries at most two 64 MiB captures plus framing; anything far bigger is
 * a corrupt size field, and must not turn into a giant allocation. */
#define MAX_FRAME ((uint64_t)1 << 30)

int zmtp_dial(zmtp_t *z, const char *path) {
  z->fd = -1;
  z->rpos = z->rlen = 0;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof sa.sun_path) { errno = ENAMETOOLONG; return -1; }
  memcpy(sa.sun_path, path, n);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  z->fd = fd;
  return 0;
}

void zmtp_close(zmtp_t *z) {
  if (z->fd >= 0) close(z->fd);
  z->fd = -1;
}

static int wait_fd(int fd, short ev, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) { errno = ETIMEDOUT; return -1; }
    struct pollfd p = {fd, ev, 0};
    int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (r > 0) return 0;
    if (r < 0 && errno != EINTR) return -1;
  }
}

static int send_iov(zmtp_t *z, struct iovec *iov, int cnt, int64_t deadline) {
  while (cnt > 0) {
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)cnt;
    ssize_t w = sendmsg(z->fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -1;
      if (wait_fd(z->fd, POLLOUT, deadline)) return -1;
      continue;
    }
    size_t left = (size_t)w;
    while (cnt > 0 && left >= iov->iov_len) { left -= iov->iov_len; iov++; cnt--; }
    if (cnt > 0) { iov->iov_base = (char *)iov->iov_base + left; iov->iov_len -= left; }
  }
  return 0;
}

static ssize_t read_some(zmtp_t *z, void *dst, size_t n, int64_t deadline) {
  for (;;) {
    ssize_t r = read(z->fd, dst, n);
    if (r > 0) return r;
    if (r == 0) { errno = ECONNRESET; return -1; }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return -1;
    if (wait_fd(z->fd, POLLIN, deadline)) return -1;
  }
}

/* Small reads are served from rbuf so a whole short reply costs one read(2); big
 * bodies go straight into their destination. */
static int read_exact(zmtp_t *z, void *dst, size_t n, int64_t deadline) {
  uint8_t *d = dst;
  size_t have = z->rlen - z->rpos;
  size_t c = have < n ? have : n;
  memcpy(d, z->rbuf + z->rpos, c);
  z->rpos += c;
  d += c;
  n -= c;
  while (n > 0) {
    if (n >= sizeof z->rbuf) {
      ssize_t r = read_some(z, d, n, deadline);
      if (r < 0) return -1;
      d += r;
      n -= (size_t)r;
      continue;
    }
    ssize_t r = read_some(z, z->rbuf, sizeof z->rbuf, deadline);
    if (r < 0) return -1;
    z->rpos = 0;
    z->rlen = (size_t)r;
    c = z->rlen < n ? z->rlen : n;
    memcpy(d, z->rbuf, c);
    z->rpos = c;
    d += c;
    n -= c;
  }
  return 0;
}

static int read_frame_head(zmtp_t *z, uint8_t *flags, uint64_t *size, int64_t deadline) {
  uint8_t h[8];
  if (read_exact(z, flags, 1, deadline)) return -1;
  if (*flags & ~(FLAG_MORE | FLAG_LONG | FLAG_CMD)) { errno = EPROTO; return -1; }
  if (*flags & FLAG_LONG) {
    if (read_exact(z, h, 8, deadline)) return -1;
    uint64_t s = 0;
    for (int i = 0; i < 8; i++) s = (s << 8) | h[i];
    *size = s;
  } else {
    if (read_exact(z, h, 1, deadline)) return -1;
    *size = h[0];
  }
  if (*size > MAX_FRAME) { errno = EMSGSIZE; return -1; }
  return 0;
}

/* Reads and throws away a frame body without holding it all in memory. */
static int discard(zmtp_t *z, uint64_t n, int64_t deadline) {
  uint8_t tmp[4096];
  while (n > 0) {
    size_t c = n < sizeof tmp ? (size_t)n : sizeof tmp;
    if (read_exact(z, tmp, c, deadline)) return -1;
    n -= c;
  }
  return 0;
}

static const char READY_CMD[] =
    "\x04\x19"             /* command frame, 25 bytes */
    "\x05READY"
    "\x0bSocket-Type"
    "\x00\x00\x00\x03REQ";

int zmtp_handshake(zmtp_t *z, int64_t deadline) {
  /* The READY goes out with the greeting: NULL needs no negotiation, so this saves
   * a round trip and libzmq processes the buffered command after the greeting. The
   * request cannot go with them: libzmq takes a message that arrives before it has sent
   * its own READY for a handshake error and resets the connection (tried 2026-11-29). */
  uint8_t out[64 + sizeof READY_CMD - 1];
  memset(out, 0, 64);
  out[0] = 0xff;
  out[9] = 0x7f;
  out[10] = 3;
  out[11] = 0;
  memcpy(out + 12, "NULL", 4);
  memcpy(out + 64, READY_CMD, sizeof READY_CMD - 1);
  struct iovec iov = {out, sizeof out};
  if (send_iov(z, &iov, 1, deadline)) return -1;

  uint8_t g[64];
  if (read_exact(z, g, 64, deadline)) return -1;
  static const uint8_t null_mech[20] = "NULL";
  if (g[0] != 0xff || !(g[9] & 1) || g[10] < 3 || memcmp(g + 12, null_mech, 20) != 0) {
    errno = EPROTO;
    return -1;
  }
  for (;;) {
    uint8_t flags;
    uint64_t size;
    if (read_frame_head(z, &flags, &size, deadline)) return -1;
    if (!(flags & FLAG_CMD)) { errno = EPROTO; return -1; }
    uint8_t name[256];
    if (size < 1) { errno = EPROTO; return -1; }
    if (read_exact(z, name, 1, deadline)) return -1;
    size_t nlen = name[0];
    if (nlen + 1 > size) { errno = EPROTO; return -1; }
    if (read_exact(z, name + 1, nlen, deadline)) return -1;
    if (discard(z, size - 1 - nlen, deadline)) return -1;
    if (nlen == 5 && memcmp(name + 1, "READY", 5) == 0) return 0;
    if (nlen == 5 && memcmp(name + 1, "ERROR", 5) == 0) { errno = ECONNREFUSED; return -1; }
  }
}

void zmtp_sndbuf(zmtp_t *z, size_t n) {
  int sz = n > (1u << 30) ? 1 << 30 : (int)n;
  int cur = 0;
  socklen_t l = sizeof cur;
  /* The kernel doubles what is set (bookkeeping) and reports that. */
  if (getsockopt(z->fd, SOL_SOCKET, SO_SNDBUF, &cur, &l) == 0 && cur / 2 >= sz) return;
  if (setsockopt(z->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) != 0) setsockopt(z->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

int zmtp_send(zmtp_t *z, const uint8_t *body, size_t n, int64_t deadline) {
  /* REQ envelope: an empty delimiter frame with MORE, then the body frame. */
  uint8_t h[11] = {FLAG_MORE, 0};
  size_t hl;
  if (n <= 255) {
    h[2] = 0;
    h[3] = (uint8_t)n;
    hl = 4;
  } else {
    h[2] = FLAG_LONG;
    for (int i = 0; i < 8; i++) h[3 + i] = (uint8_t)((uint64_t)n >> (8 * (7 - i)));
    hl = 11;
  }
  struct iovec iov[2] = {{h, hl}, {(void *)body, n}};
  return send_iov(z, iov, 2, deadline);
}

int zmtp_recv(zmtp_t *z, buf_t *body, int64_t deadline) {
  int idx = 0;
  for (;;) {
    uint8_t flags;
    uint64_t size;
    if (read_frame_head(z, &flags, &size, deadline)) return -1;
    if (flags & FLAG_CMD) {  /* PING and friends: not ours to answer */
      if (discard(z, size, deadline)) return -1;
      continue;
    }
    if (idx == 0 && (size != 0 || !(flags & FLAG_MORE))) { errno = EPROTO; return -1; }
    if (idx > 0) {
      /* The body is the last frame; a REQ reply has exactly one after the delimiter. */
      body->len = 0;
      if (buf_reserve(body, (size_t)size)) { errno = ENOMEM; return -1; }
      if (read_exact(z, body->p, (size_t)size, deadline)) return -1;
      body->len = (size_t)size;
    }
    idx++;
    if (!(flags & FLAG_MORE)) return idx >= 2 ? 0 : (errno = EPROTO, -1);
  }
}
