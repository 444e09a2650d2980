#include "request.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "msgpack.h"
#include "proto.h"
#include "util.h"

extern char **environ;

void encode_header(buf_t *b, uint32_t nfields, const char *t) {
  mp_map(b, nfields);
  mp_cstr(b, "t");
  mp_cstr(b, t);
  mp_cstr(b, "v");
  mp_int(b, VRIFT_PROTOCOL_VERSION);
  mp_cstr(b, "build");
  mp_cstr(b, VRIFT_BUILD_ID);
}

void encode_compile(buf_t *b, const char *cwd, const char *exe, char **argv, const char *named0, int can_split) {
  encode_header(b, 12 + (can_split != 0), "compile");
  mp_cstr(b, "cwd");
  mp_cstr(b, cwd);
  mp_cstr(b, "exe");
  mp_cstr(b, exe);
  mp_cstr(b, "argv");
  uint32_t n = 0;
  while (argv[n]) n++;
  mp_array(b, n);
  for (uint32_t i = 0; i < n; i++) mp_cstr(b, i ? argv[i] : named0);
  mp_cstr(b, "env");
  n = 0;
  while (environ[n]) n++;
  mp_array(b, n);
  for (uint32_t i = 0; i < n; i++) mp_cstr(b, environ[i]);
  mp_cstr(b, "tty");
  mp_bool(b, isatty(2));
  /* We write a hit's outputs ourselves: the shims of a -j build do it in parallel, while
   * the daemon is one thread. */
  mp_cstr(b, "wf");
  mp_bool(b, 1);
  /* ... into spare files the daemon made ahead, when it has some (outputs.c). */
  mp_cstr(b, "sp");
  mp_bool(b, 1);
  /* ... and report a compile one-way, with the files the daemon names (report.c). */
  mp_cstr(b, "ow");
  mp_bool(b, 1);
  /* Once we have exited, our one-way report is sent: `vrift stats` waits for it. */
  mp_cstr(b, "pid");
  mp_int(b, getpid());
  /* ... and run a command with several sources as one call per source (split.c). */
  if (can_split) {
    mp_cstr(b, "sx");
    mp_bool(b, 1);
  }
}

int request(zmtp_t *z, const buf_t *req, buf_t *rep, int64_t timeout) {
  int64_t dl = now_ms() + timeout;
  if (zmtp_send(z, req->p, req->len, dl) || zmtp_recv(z, rep, dl)) {
    dbg("request failed: %s", strerror(errno));
    return -1;
  }
  return 0;
}
