#ifndef VRIFT_SPLIT_H
#define VRIFT_SPLIT_H
#include <stdint.h>

/* Set in every call a split runs (the private directory, or empty): such a call never splits
 * again, and the link front-end keys the directory's objects by their names in it. */
#define SPLIT_DIR_ENV "VRIFT_SPLIT_DIR"
/* An argument that starts with it names a file in the private directory (split.ts SPLIT_TMP). */
#define SPLIT_TMP '\001'

/* Runs the daemon's `split` reply (ipc/messages/compile.ts SplitReply): `cmds[0..n)`, then
 * `link` (may be NULL), each as a call of its own through this shim, NULL-terminated
 * argument lists without argv[0]. The compiles run in parallel with tokens from make's
 * jobserver, one at a time without; their output is printed in their order.
 * Exits with what the one command would have; returns -1 only when nothing has run yet
 * and the caller should run the original command. */
int run_split(const char *exe, char ***cmds, uint32_t n, char **link);

#endif
