/* Where the compiler the build named really is: PATH order like execvp, never ourselves. */
#define _GNU_SOURCE
#include "lookup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int same_file_as_self(const struct stat *st) {
  static struct stat self;
  static int have = -1;
  if (have < 0) have = stat("/proc/self/exe", &self) == 0;
  return have && st->st_dev == self.st_dev && st->st_ino == self.st_ino;
}

static int is_runnable(const char *path, struct stat *st) {
  return stat(path, st) == 0 && S_ISREG(st->st_mode) && access(path, X_OK) == 0;
}

/* PATH order, like execvp, but never ourselves: a masquerade symlink earlier on PATH
 * would otherwise make the shim call itself forever. */
static int path_lookup(const char *name, const char *cwd, char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path;; ) {
    const char *e = strchrnul(p, ':');
    int dl = (int)(e - p);
    int n;
    if (dl == 0) n = snprintf(out, cap, "%s/%s", cwd, name);
    else if (p[0] != '/') n = snprintf(out, cap, "%s/%.*s/%s", cwd, dl, p, name);
    else n = snprintf(out, cap, "%.*s/%s", dl, p, name);
    struct stat st;
    if (n > 0 && (size_t)n < cap && is_runnable(out, &st) && !same_file_as_self(&st)) return 0;
    if (!*e) break;
    p = e + 1;
  }
  return -1;
}

int resolve_compiler(const char *named, int masquerade, const char *cwd, char *out, size_t cap, int *named_self) {
  const char *base = strrchr(named, '/');
  base = base ? base + 1 : named;
  *named_self = masquerade;
  if (masquerade || !strchr(named, '/')) return path_lookup(base, cwd, out, cap);
  int n = named[0] == '/' ? snprintf(out, cap, "%s", named) : snprintf(out, cap, "%s/%s", cwd, named);
  if (n < 0 || (size_t)n >= cap) return -1;
  struct stat st;
  /* `vrift-shim /path/to/shims/gcc` names ourselves: find the gcc we stand in for. */
  if (stat(out, &st) == 0 && same_file_as_self(&st)) {
    *named_self = 1;
    return path_lookup(base, cwd, out, cap);
  }
  return 0;
}

void apparent_cwd(char *out, size_t cap) {
  const char *pwd = getenv("PWD");
  struct stat a, b;
  if (pwd && pwd[0] == '/' && strlen(pwd) < cap && stat(pwd, &a) == 0 && stat(".", &b) == 0 &&
      a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
    strcpy(out, pwd);
    return;
  }
  if (!getcwd(out, cap)) out[0] = 0;
}
