#ifndef VRIFT_LOOKUP_H
#define VRIFT_LOOKUP_H
#include <stddef.h>

/* The build's own logical directory (symlinks kept) when $PWD is accurate, as ccache
 * does: relative paths in the arguments are relative to it. "" when there is none. */
void apparent_cwd(char *out, size_t cap);

/* The compiler `named` stands for, into `out`: looked up on PATH like execvp when the name
 * has no slash or the call came through a masquerade link, but never the shim itself.
 * *named_self: the call named the shim itself, so argv[0] must not reach the compiler as
 * is (gcc finds cc1 relative to argv[0]'s directory). -1 when there is none. */
int resolve_compiler(const char *named, int masquerade, const char *cwd, char *out, size_t cap, int *named_self);

#endif
