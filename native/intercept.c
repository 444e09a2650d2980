/* libvrift-intercept.so: `vrift run` preloads it (LD_PRELOAD) into every dynamically
 * linked process of the build. An exec of a compiler vrift knows, recognised by the file
 * its path resolves to (classify.c), whatever name or path the build used, becomes an exec
 * of vrift-shim with that path: `$VRIFT_INTERCEPT <path> args...`. Every other exec goes to
 * libc with the caller's own arguments, so its errors, exit codes and argv are libc's.
 *
 * The exec's own environment decides: without VRIFT_INTERCEPT in it (env -i, a build that
 * cleans its environment) nothing is routed. vrift-shim is static, so its own exec of the
 * real compiler never comes here, and it drops this library from the compiler's
 * LD_PRELOAD: what the compiler runs (gcc's lto-wrapper runs gcc) is not routed again.
 *
 * PATH: `vrift run` keeps its masquerade directory (links named gcc, cc... to the shim)
 * first on PATH for statically linked build tools, which this library cannot reach.
 * A dynamically linked process never sees it: the constructor takes it off this process's
 * PATH, so CMake, `which` and shells find and record the real compiler. An exec of another
 * program puts it back in the environment passed on, for a static tool further down.
 *
 * Runs in vfork children and in forks of threaded processes: no malloc, no locks waited
 * for; the libc functions are looked up once, in the constructor. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

typedef int execve_fn(const char *, char *const[], char *const[]);
typedef int spawn_fn(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *, char *const[], char *const[]);

static execve_fn *real_execve, *real_execvpe;
static spawn_fn *real_spawn, *real_spawnp;

static void resolve_real(void) {
  if (!real_execve) real_execve = (execve_fn *)dlsym(RTLD_NEXT, "execve");
  if (!real_execvpe) real_execvpe = (execve_fn *)dlsym(RTLD_NEXT, "execvpe");
  if (!real_spawn) real_spawn = (spawn_fn *)dlsym(RTLD_NEXT, "posix_spawn");
  if (!real_spawnp) real_spawnp = (spawn_fn *)dlsym(RTLD_NEXT, "posix_spawnp");
}

static const char *env_in(char *const *envp, const char *name) {
  size_t n = strlen(name);
  for (; envp && *envp; envp++)
    if (!strncmp(*envp, name, n) && (*envp)[n] == '=') return *envp + n + 1;
  return NULL;
}

/* Whether PATH's value starts with the directory `dir` as a whole entry. */
static size_t path_starts_with(const char *path, const char *dir) {
  size_t n = strlen(dir);
  return n && !strncmp(path, dir, n) && (path[n] == ':' || path[n] == 0) ? n : 0;
}

__attribute__((constructor)) static void init(void) {
  resolve_real();
  const char *dir = getenv("VRIFT_MASQUERADE");
  if (!dir) return;
  for (char **e = environ; e && *e; e++) {
    if (strncmp(*e, "PATH=", 5)) continue;
    char *v = *e + 5;
    size_t n = path_starts_with(v, dir);
    /* In place: no allocation, and the entry keeps its place in environ. */
    if (n) memmove(v, v + n + (v[n] == ':'), strlen(v + n + (v[n] == ':')) + 1);
    return;
  }
}

static size_t count(char *const *v) {
  size_t n = 0;
  while (v && v[n]) n++;
  return n;
}

static const char *base(const char *p) {
  const char *b = strrchr(p, '/');
  return b ? b + 1 : p;
}

/* execvp's search: the first regular executable file on the caller's PATH. */
static int path_search(const char *file, char *out, size_t cap) {
  const char *path = getenv("PATH");
  if (!path) path = "/bin:/usr/bin";
  for (const char *p = path;;) {
    const char *e = strchrnul(p, ':');
    int n = e == p ? snprintf(out, cap, "./%s", file) : snprintf(out, cap, "%.*s/%s", (int)(e - p), p, file);
    struct stat st;
    if (n > 0 && (size_t)n < cap && stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0) return 0;
    if (!*e) return -1;
    p = e + 1;
  }
}

/* A compiler call that goes around the cache is counted as the shim counts its own
 * (native/util.c fallback(), read by `vrift stats` and `vrift run`'s summary). */
static void note_fallback(char *const envp[], const char *reason) {
  const char *home = env_in(envp, "VRIFT_HOME"), *user = env_in(envp, "HOME");
  char file[PATH_MAX], line[160];
  int n = home && home[0] == '/' ? snprintf(file, sizeof file, "%s/log/fallback.ndjson", home)
          : user && user[0] == '/' ? snprintf(file, sizeof file, "%s/.vrift/log/fallback.ndjson", user) : -1;
  if (n < 0 || (size_t)n >= sizeof file) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  n = snprintf(line, sizeof line, "{\"ts\":%lld,\"pid\":%d,\"reason\":\"%s\"}\n", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, (int)getpid(), reason);
  int saved = errno;
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd >= 0) {
    if (n > 0 && (size_t)n < sizeof line) (void)!write(fd, line, (size_t)n);
    close(fd);
  }
  errno = saved;
}

enum { PASS, ROUTE, REPATH };

/* What an exec of `file` becomes. ROUTE: argv for the shim is [shim, path, argv[1]...],
 * with `path` in p->exe. REPATH: the same call with the masquerade directory back on PATH.
 * `search`: `file` is looked up on PATH like execvp does. */
struct plan {
  int kind;
  const char *shim;
  const char *masq, *path_value; /* REPATH: the directory and PATH's value in envp */
  size_t path_at;                /* REPATH: PATH's index in envp */
  char exe[PATH_MAX];
};

static void plan(struct plan *p, const char *file, int search, int relative_ok, char *const argv[], char *const envp[]) {
  p->kind = PASS;
  p->shim = env_in(envp, "VRIFT_INTERCEPT");
  if (!p->shim || !p->shim[0] || !file || !file[0] || !argv || !argv[0]) return;
  int found;
  if (search && !strchr(file, '/')) found = path_search(file, p->exe, sizeof p->exe) == 0;
  else found = snprintf(p->exe, sizeof p->exe, "%s%s", strchr(file, '/') ? "" : "./", file) < (int)sizeof p->exe;
  /* One that cannot be run is left to fail in the caller, with the caller's own message. */
  if (found && (relative_ok || p->exe[0] == '/') && is_compiler_exe(p->exe) && access(p->exe, X_OK) == 0) {
    /* The compiler sees the shim's argument as argv[0]: only the same name keeps what
     * it reads there (clang++'s C++ mode, a target prefix, rustup's proxy). */
    if (!strcmp(base(argv[0]), base(p->exe))) {
      p->kind = ROUTE;
      return;
    }
    note_fallback(envp, "argv0");
  }
  p->masq = env_in(envp, "VRIFT_MASQUERADE");
  if (!p->masq || !p->masq[0]) return;
  for (size_t i = 0; envp[i]; i++) {
    if (strncmp(envp[i], "PATH=", 5)) continue;
    p->path_value = envp[i] + 5;
    p->path_at = i;
    if (!path_starts_with(p->path_value, p->masq) && strlen(p->masq) + strlen(p->path_value) < 65536) p->kind = REPATH;
    return;
  }
}

static void shim_argv(const struct plan *p, char *const argv[], char **out) {
  size_t n = count(argv);
  out[0] = (char *)p->shim;
  out[1] = (char *)p->exe;
  for (size_t i = 1; i <= n; i++) out[i + 1] = argv[i];
}

static void repath_env(const struct plan *p, char *const envp[], char **out, char *pathbuf) {
  size_t n = count(envp);
  memcpy(out, envp, (n + 1) * sizeof *out);
  sprintf(pathbuf, "PATH=%s%s%s", p->masq, p->path_value[0] ? ":" : "", p->path_value);
  out[p->path_at] = pathbuf;
}

#define PATH_BUF(p) ((p)->kind == REPATH ? strlen((p)->masq) + strlen((p)->path_value) + 8 : 1)

/* exec family: `search` as execvp. */
static int do_exec(const char *file, int search, char *const argv[], char *const envp[]) {
  resolve_real();
  struct plan p;
  plan(&p, file, search, 1, argv, envp);
  if (p.kind == ROUTE) {
    char *nargv[count(argv) + 2];
    shim_argv(&p, argv, nargv);
    int saved = errno;
    real_execve(p.shim, nargv, envp);
    note_fallback(envp, "intercept_exec");
    errno = saved; /* no shim: the compiler runs as the build asked */
  } else if (p.kind == REPATH) {
    char *nenv[count(envp) + 1], buf[PATH_BUF(&p)];
    repath_env(&p, envp, nenv, buf);
    return search ? real_execvpe(file, argv, nenv) : real_execve(file, argv, nenv);
  }
  return search ? real_execvpe(file, argv, envp) : real_execve(file, argv, envp);
}

static int do_spawn(pid_t *pid, const char *file, int search, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                    char *const argv[], char *const envp[]) {
  resolve_real();
  spawn_fn *real = search ? real_spawnp : real_spawn;
  struct plan p;
  /* File actions may change the directory (addchdir): a relative path is not ours to judge. */
  plan(&p, file, search, fa == NULL, argv, envp);
  if (p.kind == ROUTE) {
    char *nargv[count(argv) + 2];
    shim_argv(&p, argv, nargv);
    if (real_spawn(pid, p.shim, fa, attr, nargv, envp) == 0) return 0;
    note_fallback(envp, "intercept_exec");
  } else if (p.kind == REPATH) {
    char *nenv[count(envp) + 1], buf[PATH_BUF(&p)];
    repath_env(&p, envp, nenv, buf);
    return real(pid, file, fa, attr, argv, nenv);
  }
  return real(pid, file, fa, attr, argv, envp);
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[]) { return do_exec(path, 0, argv, envp); }
EXPORT int execv(const char *path, char *const argv[]) { return do_exec(path, 0, argv, environ); }
EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) { return do_exec(file, 1, argv, envp); }
EXPORT int execvp(const char *file, char *const argv[]) { return do_exec(file, 1, argv, environ); }

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                       char *const argv[], char *const envp[]) {
  return do_spawn(pid, path, 0, fa, attr, argv, envp);
}
EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr,
                        char *const argv[], char *const envp[]) {
  return do_spawn(pid, file, 1, fa, attr, argv, envp);
}

/* glibc's execl* call its internal execve, not this one: the list becomes an argv here. */
#define LIST_ARGV(first, ap, argv, extra)                  \
  size_t n_ = 1;                                           \
  va_list c_;                                              \
  va_copy(c_, ap);                                         \
  while (va_arg(c_, char *)) n_++;                         \
  va_end(c_);                                              \
  char *argv[n_ + 1];                                      \
  argv[0] = (char *)(first);                               \
  for (size_t i_ = 1; i_ <= n_; i_++) argv[i_] = va_arg(ap, char *); \
  extra

EXPORT int execl(const char *path, const char *arg, ...) {
  va_list ap;
  va_start(ap, arg);
  LIST_ARGV(arg, ap, argv, va_end(ap);)
  return do_exec(path, 0, argv, environ);
}
EXPORT int execlp(const char *file, const char *arg, ...) {
  va_list ap;
  va_start(ap, arg);
  LIST_ARGV(arg, ap, argv, va_end(ap);)
  return do_exec(file, 1, argv, environ);
}
EXPORT int execle(const char *path, const char *arg, ...) {
  va_list ap;
  va_start(ap, arg);
  LIST_ARGV(arg, ap, argv, char *const *envp = va_arg(ap, char *const *); va_end(ap);)
  return do_exec(path, 0, argv, envp);
}
