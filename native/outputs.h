#ifndef VRIFT_OUTPUTS_H
#define VRIFT_OUTPUTS_H

#include "reply.h"

/* A hit's outputs (`files` of the reply), written the way the compiler would: a fresh
 * file (unlink, then O_EXCL) with 0666 minus the umask, or the daemon's spare file renamed
 * into place. Any failure (e.g. the output directory does not exist) returns -1 and the
 * caller runs the compiler, which then fails or succeeds the way it would have without
 * vrift. */
int write_outputs(const reply_t *rep);

#endif
