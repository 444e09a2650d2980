#ifndef VRIFT_REQUEST_H
#define VRIFT_REQUEST_H
#include <stdint.h>

#include "buf.h"
#include "zmtp.h"

/* The map every message to the daemon starts with: `nfields` in all, of which the kind
 * `t`, the protocol version and the build id are the first three (ipc/messages/). */
void encode_header(buf_t *b, uint32_t nfields, const char *t);

/* The compile request (ipc/messages/compile.ts): the call as named (`named0` in place of
 * argv[0]), the compiler it resolved to, our environment, and what this shim can do with
 * the answer. `can_split`: a split reply may come back (split.h). */
void encode_compile(buf_t *b, const char *cwd, const char *exe, char **argv, const char *named0, int can_split);

/* One request and its reply under a deadline `timeout` ms from now; -1 on any failure,
 * the connection then useless. */
int request(zmtp_t *z, const buf_t *req, buf_t *rep, int64_t timeout);

#endif
