#ifndef VRIFT_DEPFILE_H
#define VRIFT_DEPFILE_H
#include <stddef.h>
#include <stdint.h>
#include "buf.h"

/* A length-counted string (from a msgpack reply, not NUL-terminated). */
typedef struct {
  const char *s;
  uint32_t n;
} lstr;

/*
 * The depfile -MMD would have written, from the full one -MD wrote, the way the daemon
 * renders it (daemon/frontends/gcc/depfile.ts writeGcc over sysdirs.ts filterSystemDeps):
 * every prerequisite but the source that the longest matching search directory makes a
 * system header is dropped (on a tie the system directory wins). `targets` are the rule's
 * targets as they are to be written; `dirs` the search directories, each prefixed '1'
 * (system) or '0' (user), without a trailing slash ("" is the current directory).
 * Only for the plain text gcc writes for paths without blanks, `$`, `#` or backslashes
 * (daemon depfile.ts parsePlain): -1 for anything else, and the daemon writes it.
 */
int mmd_render(const uint8_t *in, size_t n, const lstr *targets, uint32_t nt, const lstr *dirs, uint32_t nd, int phony, buf_t *out);

#endif
