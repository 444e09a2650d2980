/* A command with several sources, split by the daemon (daemon/frontends/gcc/split.ts) into
 * one compile per source and maybe a link: each runs as `vrift-shim <compiler> <args>`, an
 * ordinary call with its own lookup and its own fail-open path. What the build sees is what
 * the one command would give: the compiles' output in their order, no link after a failed
 * compile, exit 1 then. */
#define _GNU_SOURCE
#include "split.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobserver.h"
#include "util.h"

extern char **environ;

typedef struct {
  char **argv;    /* vrift-shim, compiler, args */
  char **direct;  /* compiler, args: when this shim cannot be run again */
  pid_t pid;      /* 0 until started */
  int out, err;   /* buffered output (memfd), -1 when it went straight to ours */
  int done, code, sig;
} sub_t;

/* Termination signals stop every call and then this shim, the way they would stop the
 * one compiler driver; SIGCHLD ends the wait for a call. */
static const int STOPS[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
#define NSTOPS 4
static volatile sig_atomic_t stop_sig;
static void on_stop(int s) { stop_sig = s; }
static void on_child(int s) { (void)s; }

static char **vec(const char *a0, const char *a1, char **rest) {
  size_t n = 0;
  while (rest[n]) n++;
  char **v = calloc(n + 3, sizeof *v);
  if (!v) return NULL;
  size_t k = 0;
  v[k++] = (char *)a0;
  if (a1) v[k++] = (char *)a1;
  for (size_t i = 0; i < n; i++) v[k++] = rest[i];
  return v;
}

/* environ with SPLIT_DIR_ENV=dir in place of any of ours. */
static char **child_env(const char *dir) {
  size_t n = 0;
  while (environ[n]) n++;
  char **v = calloc(n + 2, sizeof *v);
  char *kv = NULL;
  if (!v || asprintf(&kv, "%s=%s", SPLIT_DIR_ENV, dir) < 0) { free(v); return NULL; }
  size_t k = 0, kl = strlen(SPLIT_DIR_ENV);
  for (size_t i = 0; i < n; i++)
    if (!(strncmp(environ[i], SPLIT_DIR_ENV, kl) == 0 && environ[i][kl] == '=')) v[k++] = environ[i];
  v[k++] = kv;
  return v;
}

/* Arguments naming the private directory (SPLIT_TMP): the directory in their place. */
static int place(char **args, const char *dir) {
  for (size_t i = 0; args[i]; i++) {
    if (args[i][0] != SPLIT_TMP) continue;
    char *p;
    if (!dir[0] || asprintf(&p, "%s/%s", dir, args[i] + 1) < 0) return -1;
    args[i] = p;
  }
  return 0;
}

static int names_tmp(char **args) {
  for (size_t i = 0; args && args[i]; i++)
    if (args[i][0] == SPLIT_TMP) return 1;
  return 0;
}

static void remove_dir(const char *dir) {
  if (!dir[0]) return;
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d)))
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
  }
  rmdir(dir);
}

static void copy_out(int from, int to) {
  if (from < 0) return;
  char b[65536];
  ssize_t n;
  lseek(from, 0, SEEK_SET);
  while ((n = read(from, b, sizeof b)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0 && write_all(to, b, (size_t)n) != 0) break;
  close(from);
}

typedef struct {
  struct sigaction old[NSTOPS + 1];
  sigset_t oldmask;
} sigstate;

static pid_t launch(sub_t *s, char **env, const sigstate *ss) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  for (int i = 0; i < NSTOPS; i++) sigaction(STOPS[i], &ss->old[i], NULL);
  sigaction(SIGCHLD, &ss->old[NSTOPS], NULL);
  sigprocmask(SIG_SETMASK, &ss->oldmask, NULL);
  if (s->out >= 0 && (dup2(s->out, 1) < 0 || dup2(s->err, 2) < 0)) _exit(127);
  execve("/proc/self/exe", s->argv, env);
  /* Not this shim again (no /proc): the compiler itself, uncached but the same call. */
  execve(s->direct[0], s->direct, env);
  dprintf(2, "vrift-shim: %s: %s\n", s->direct[0], strerror(errno));
  _exit(errno == ENOENT ? 127 : 126);
}

int run_split(const char *exe, char ***cmds, uint32_t n, char **link) {
  if (n == 0 || getenv(SPLIT_DIR_ENV)) return -1;
  char dir[4096] = "";
  int need_dir = names_tmp(link);
  for (uint32_t i = 0; i < n && !need_dir; i++) need_dir = names_tmp(cmds[i]);
  if (need_dir) {
    /* Where gcc puts its own temporary objects. */
    const char *t = getenv("TMPDIR");
    struct stat st;
    if (!t || t[0] != '/' || stat(t, &st) != 0 || !S_ISDIR(st.st_mode)) t = "/tmp";
    int k = snprintf(dir, sizeof dir, "%s/vrift-split-XXXXXX", t);
    if (k < 0 || (size_t)k >= sizeof dir || !mkdtemp(dir)) return -1;
  }
  uint32_t total = n + (link ? 1 : 0);
  sub_t *subs = calloc(total, sizeof *subs);
  char **env = child_env(dir);
  int ok = subs && env;
  for (uint32_t i = 0; ok && i < total; i++) {
    char **args = i < n ? cmds[i] : link;
    ok = place(args, dir) == 0 && (subs[i].argv = vec("vrift-shim", exe, args)) && (subs[i].direct = vec(exe, NULL, args));
    subs[i].out = subs[i].err = -1;
  }
  if (!ok) {
    remove_dir(dir);
    return -1;
  }

  /* Parallel only where buffering changes nothing the build sees: a terminal would get
   * colours and progress from a compiler that writes to it directly. */
  jobserver js;
  int par = n > 1 && !isatty(1) && !isatty(2) && js_open(&js, getenv("MAKEFLAGS")) == 0;
  if (!par) js.rfd = -1, js.held = 0, js.own_w = 0, js.wfd = -1;

  sigstate ss;
  sigset_t block, waitmask;
  sigemptyset(&block);
  for (int i = 0; i < NSTOPS; i++) sigaddset(&block, STOPS[i]);
  sigaddset(&block, SIGCHLD);
  sigprocmask(SIG_BLOCK, &block, &ss.oldmask);
  struct sigaction sa = {0};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;
  /* A stop signal the build ignores (nohup make) stays ignored, as gcc's driver keeps it:
   * the calls inherit that from ss.old and this shim is not stopped by it either. */
  for (int i = 0; i < NSTOPS; i++) {
    sigaction(STOPS[i], NULL, &ss.old[i]);
    if (ss.old[i].sa_handler != SIG_IGN) sigaction(STOPS[i], &sa, NULL);
  }
  sa.sa_handler = on_child;
  sa.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, &ss.old[NSTOPS]);
  waitmask = ss.oldmask;
  for (int i = 0; i < NSTOPS; i++) sigdelset(&waitmask, STOPS[i]);
  sigdelset(&waitmask, SIGCHLD);

  uint32_t next = 0, printed = 0, running = 0;
  int failed = 0;   /* a compile exited 1: the others still run, the link does not */
  int halt = 0;     /* stopped by a signal, or a call crashed: nothing more starts */
  int killed = 0;   /* the calls running were sent the signal that stops us */
  int crashed = 0;  /* ... a call in order exited otherwise: gcc's driver stops there */
  int final = 0, final_sig = 0;
  for (;;) {
    if (stop_sig && !killed) {
      for (uint32_t i = 0; i < next; i++)
        if (subs[i].pid > 0 && !subs[i].done) kill(subs[i].pid, stop_sig);
      killed = halt = 1, final = 128 + stop_sig, final_sig = stop_sig;
    }
    while (!halt && next < total) {
      sub_t *s = &subs[next];
      /* The link: after every compile is out, if all succeeded. */
      if (next == n && (running > 0 || printed < n || failed)) break;
      if (par ? running >= 1 + (uint32_t)js.held : running > 0 || printed < next) break;
      if (par && next < n) {
        s->out = memfd_create("vrift-split-out", MFD_CLOEXEC);
        s->err = memfd_create("vrift-split-err", MFD_CLOEXEC);
        if (s->out < 0 || s->err < 0) {
          /* Then one at a time, straight to our output. */
          if (s->out >= 0) close(s->out);
          if (s->err >= 0) close(s->err);
          s->out = s->err = -1;
          par = 0;
          continue;
        }
      }
      s->pid = launch(s, env, &ss);
      if (s->pid > 0) {
        next++, running++;
        continue;
      }
      s->pid = 0;
      if (s->out >= 0) close(s->out), close(s->err), s->out = s->err = -1;
      if (next == 0) {
        /* Nothing ran: the original command, whole. */
        js_close(&js);
        for (int i = 0; i < NSTOPS; i++) sigaction(STOPS[i], &ss.old[i], NULL);
        sigaction(SIGCHLD, &ss.old[NSTOPS], NULL);
        sigprocmask(SIG_SETMASK, &ss.oldmask, NULL);
        remove_dir(dir);
        return -1;
      }
      if (running > 0) break; /* again once one has ended */
      /* The compiler driver could not fork either: that call fails, as it would have. */
      dprintf(2, "vrift-shim: %s: %s\n", exe, strerror(errno));
      s->done = 1, s->code = 1;
      next++;
    }
    /* Tokens beyond the calls running go back as soon as no compile waits for one. */
    uint32_t needed = running > 0 ? running - 1 : 0;
    while ((uint32_t)js.held > needed && (halt || next >= n || !par)) js_give(&js);

    if (running > 0) {
      struct pollfd p = {js.rfd, POLLIN, 0};
      int want = par && !halt && next < n && js.rfd >= 0 && js.held < JS_MAX_HELD;
      if (ppoll(&p, want ? 1 : 0, NULL, &waitmask) > 0 && (p.revents & POLLIN)) js_take(&js);
    }
    for (uint32_t i = 0; i < next; i++) {
      sub_t *s = &subs[i];
      int st;
      if (s->pid <= 0 || s->done || waitpid(s->pid, &st, WNOHANG) != s->pid) continue;
      s->done = 1;
      running--;
      if (WIFSIGNALED(st)) s->sig = WTERMSIG(st), s->code = 128 + s->sig;
      else s->code = WEXITSTATUS(st);
    }
    /* In order: a call's output once every call before it is out. */
    while (printed < next && subs[printed].done) {
      sub_t *s = &subs[printed++];
      if (crashed) {
        if (s->out >= 0) close(s->out), close(s->err);
        continue;
      }
      copy_out(s->out, 1);
      copy_out(s->err, 2);
      if (stop_sig) continue;
      if (printed == n + 1) final = s->code, final_sig = s->sig;
      else if (s->code == 1) failed = 1, final = 1;
      else if (s->code != 0) crashed = halt = 1, final = s->code, final_sig = s->sig;
    }
    if (running == 0 && printed == next && (halt || next == total || (next == n && failed))) break;
  }

  js_close(&js);
  remove_dir(dir);
  exit_like(final, final_sig);
}
