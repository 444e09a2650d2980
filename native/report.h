#ifndef VRIFT_REPORT_H
#define VRIFT_REPORT_H

#include "buf.h"
#include "reply.h"
#include "spawn.h"

/* The report of a compile (ipc/messages/done.ts) into `req`, replacing what it held.
 * `oneway`: with `nr` and the files the daemon named in `col`, read now that the compiler
 * has exited and before the build can change them, after writing -MMD's depfile when the
 * daemon asked for it (`mmd`); -1 when one cannot be read or they are too big, and the
 * caller encodes the two-way report instead (`oneway` 0: the daemon reads them itself). */
int encode_done(buf_t *req, const reply_t *rep, const run_result *res, int oneway);

#endif
