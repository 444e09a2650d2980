#define _GNU_SOURCE
#include "compiler.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Under `vrift run` the build's processes carry the exec interceptor (native/intercept.c):
 * the compiler and what it runs do not, so nothing under it is routed again (gcc's
 * lto-wrapper runs gcc) and it runs in the environment it would have without vrift. The
 * masquerade directory the interceptor hides from dynamically linked processes goes back
 * first on PATH, as plain masquerade has it: a compiler that runs another by name
 * (rustc's linker `cc`) still reaches the shim. */
void leave_interceptor(void) {
  const char *pre = getenv("LD_PRELOAD");
  if (pre && strstr(pre, "libvrift-intercept.so")) {
    char keep[4096];
    size_t k = 0;
    for (const char *p = pre; *p;) {
      size_t n = strcspn(p, ": ");
      int ours = n >= 21 && !strncmp(p + n - 21, "libvrift-intercept.so", 21);
      if (n && !ours && k + n + 1 < sizeof keep) {
        if (k) keep[k++] = ':';
        memcpy(keep + k, p, n);
        k += n;
      }
      p += n;
      if (*p) p++;
    }
    keep[k] = 0;
    if (k) setenv("LD_PRELOAD", keep, 1);
    else unsetenv("LD_PRELOAD");
  }
  const char *dir = getenv("VRIFT_MASQUERADE"), *path = getenv("PATH");
  if (!dir || !dir[0] || !path) return;
  size_t dl = strlen(dir);
  if (!strncmp(path, dir, dl) && (path[dl] == ':' || !path[dl])) return;
  char *np = malloc(dl + strlen(path) + 2);
  if (!np) return;
  sprintf(np, "%s%s%s", dir, path[0] ? ":" : "", path);
  setenv("PATH", np, 1);
  free(np);
}

char **merge_env(char **add) {
  size_t n = 0, m = 0;
  while (environ[n]) n++;
  while (add[m]) m++;
  char **v = calloc(n + m + 1, sizeof *v);
  if (!v) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    const char *eq = strchr(environ[i], '=');
    size_t kl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
    int replaced = 0;
    for (size_t j = 0; j < m && !replaced; j++)
      replaced = strncmp(add[j], environ[i], kl) == 0 && add[j][kl] == '=';
    if (!replaced) v[k++] = environ[i];
  }
  for (size_t j = 0; j < m; j++) v[k++] = add[j];
  return v;
}

void run_original(const char *exe, char **argv) {
  /* The one message of our own: the build fails here with or without vrift. */
  if (!exe[0]) {
    /* Not "shims/gcc: No such file": the link exists, the compiler it stands in for does not. */
    const char *base = strrchr(argv[0], '/');
    dprintf(2, "vrift-shim: the real %s was not found on PATH (vrift's own shims are skipped)\n", base ? base + 1 : argv[0]);
    _exit(127);
  }
  execv(exe, argv);
  int e = errno;
  dprintf(2, "vrift-shim: %s: %s\n", exe, strerror(e));
  _exit(e == ENOENT ? 127 : 126);
}
