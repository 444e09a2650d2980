#ifndef VRIFT_RUN_H
#define VRIFT_RUN_H

#include "reply.h"
#include "trace.h"
#include "zmtp.h"

/* The daemon's `run` reply (a miss): runs the compiler with the argv and environment it
 * gave, output teed to ours and captured, reports the result and exits the way the
 * compiler did. Anything unusable before the compiler ran falls back to running the
 * original command (`exe`, `cargv`). Closes `z`. */
void run_and_report(zmtp_t *z, const reply_t *rep, const char *exe, char **cargv, const char *cwd, trace_t *tr)
    __attribute__((noreturn));

#endif
