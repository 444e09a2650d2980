#ifndef VRIFT_ZMTP_H
#define VRIFT_ZMTP_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Just enough ZMTP 3.0 (NULL mechanism, REQ role) to talk to the daemon's libzmq
 * ROUTER over a unix socket: linking libzmq costs more per process than a whole hit. */

typedef struct {
  int fd;
  size_t rpos, rlen;
  uint8_t rbuf[16384];
} zmtp_t;

/* Non-blocking connect; -1 with errno (ENOENT / ECONNREFUSED mean "no daemon"). */
int zmtp_dial(zmtp_t *z, const char *path);
/* Every call below fails with -1 and errno (ETIMEDOUT, EPROTO, ECONNRESET...) at
 * the first problem; the connection is then useless and should be closed. */
int zmtp_handshake(zmtp_t *z, int64_t deadline);
/* Lets the kernel take `n` bytes without the reader draining them first (as far as it
 * allows: SO_SNDBUFFORCE for root, else up to net.core.wmem_max). */
void zmtp_sndbuf(zmtp_t *z, size_t n);

int zmtp_send(zmtp_t *z, const uint8_t *body, size_t n, int64_t deadline);
int zmtp_recv(zmtp_t *z, buf_t *body, int64_t deadline);
void zmtp_close(zmtp_t *z);

#endif
