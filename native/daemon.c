#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The daemon's V8 young generation is capped at 4 MB semi-spaces: with Node's default
 * (16 MB) RSS after 10 000 cached compiles was 172 MiB, with 4 MB 139 MiB, lookup time and
 * CPU unchanged. Also in shim/daemon-control.ts and daemon/main.ts's #! line. */
#define VRIFT_DAEMON_NODE_FLAGS "--max-semi-space-size=4"
#include <unistd.h>

#include "util.h"

#ifndef VRIFT_NODE
#define VRIFT_NODE "node"
#endif
#ifndef VRIFT_ROOT
#define VRIFT_ROOT "."
#endif

int paths_init(vrift_paths *p) {
  const char *h = getenv("VRIFT_HOME");
  int n;
  if (h && *h) n = snprintf(p->home, sizeof p->home, "%s", h);
  else {
    const char *home = getenv("HOME");
    if (!home || !*home) return -1;
    n = snprintf(p->home, sizeof p->home, "%s/.vrift", home);
  }
  if (n < 0 || (size_t)n >= sizeof p->home) return -1;
  /* paths.ts resolves VRIFT_HOME; a relative one must name the same socket. */
  if (p->home[0] != '/') {
    char cwd[4096], tmp[4096];
    if (!getcwd(cwd, sizeof cwd)) return -1;
    if (snprintf(tmp, sizeof tmp, "%s/%s", cwd, p->home) >= (int)sizeof p->home) return -1;
    memcpy(p->home, tmp, sizeof p->home);
  }
  size_t l = strlen(p->home);
  while (l > 1 && p->home[l - 1] == '/') p->home[--l] = 0;
  snprintf(p->run_dir, sizeof p->run_dir, "%s/run", p->home);
  snprintf(p->sock, sizeof p->sock, "%s/run/vriftd.sock", p->home);
  snprintf(p->lock, sizeof p->lock, "%s/run/vriftd.lock", p->home);
  return 0;
}

/* Double fork so the daemon is nobody's child (no zombie, not killed with the
 * build's process group); the lock fd rides along so the daemon holds it for life. */
static int spawn_daemon(int lockfd) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    setsid();
    if (fork() != 0) _exit(0);
    int l = fcntl(lockfd, F_DUPFD, 10); /* F_DUPFD clears CLOEXEC */
    int nul = open("/dev/null", O_RDWR);
    if (l < 0 || nul < 0) _exit(127);
    dup2(nul, 0);
    dup2(nul, 1);
    dup2(nul, 2);
    dup2(l, 3);
    /* Never keep the build's pipes (jobserver, a CI log pipe) open for a daemon's life. */
    if (syscall(SYS_close_range, 4U, ~0U, 0U) != 0)
      for (int fd = 4; fd < 1024; fd++) close(fd);
    if (chdir("/") != 0) _exit(127);
    setenv("VRIFT_LOCK_FD", "3", 1);
    /* Inherited PATH may put the shims first: a compiler the daemon or its children
     * run must not call back into the daemon, which would wait on itself. */
    setenv("VRIFT_DISABLE", "1", 1);
    const char *d = getenv("VRIFT_DAEMON");
    if (d && *d) execl(d, d, (char *)NULL);
    else execl(VRIFT_NODE, VRIFT_NODE, VRIFT_DAEMON_NODE_FLAGS, VRIFT_ROOT "/dist/daemon/main.js", (char *)NULL);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  return 0;
}

/* 1: we hold the lock now (fd in *out), 0: someone else holds it, -1: error. */
static int try_lock(const char *lock, int *out) {
  int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) { *out = fd; return 1; }
  int e = errno;
  close(fd);
  return e == EWOULDBLOCK ? 0 : -1;
}

static int connect_once(const vrift_paths *p, zmtp_t *z, int64_t timeout) {
  for (;;) {
    if (zmtp_dial(z, p->sock) == 0) break;
    /* A unix socket with a full backlog says EAGAIN: it is alive, just busy. */
    if (errno != EAGAIN) return -1;
    sleep_ms(1);
  }
  if (zmtp_handshake(z, now_ms() + timeout) == 0) return 0;
  int e = errno;
  dbg("handshake failed: %s", strerror(e));
  zmtp_close(z);
  errno = e;
  return -1;
}

int daemon_connect(const vrift_paths *p, zmtp_t *z) {
  int64_t hs = env_ms("VRIFT_CONNECT_TIMEOUT_MS", 2000);
  if (connect_once(p, z, hs) == 0) return 0;
  if (errno != ENOENT && errno != ECONNREFUSED) {
    dbg("connect %s: %s", p->sock, strerror(errno));
    return -1;
  }
  if (mkdir_p(p->run_dir, 0700) != 0) {
    dbg("mkdir %s: %s", p->run_dir, strerror(errno));
    return -1;
  }
  int64_t deadline = now_ms() + env_ms("VRIFT_START_TIMEOUT_MS", 10000);
  int started = 0, wait = 2;
  for (;;) {
    /* The lock, not the socket, says whether a daemon lives: free means nobody is
     * starting or running one. Start it once; free again after that means it died. */
    int fd, got = try_lock(p->lock, &fd);
    if (got < 0) { dbg("lock %s: %s", p->lock, strerror(errno)); return -1; }
    if (got == 1) {
      if (started) {
        close(fd);
        dbg("daemon exited before answering");
        return -1;
      }
      dbg("starting daemon");
      int r = spawn_daemon(fd);
      close(fd);
      if (r != 0) return -1;
      started = 1;
    }
    sleep_ms(wait);
    if (wait < 20) wait += 2;
    if (connect_once(p, z, hs) == 0) return 0;
    if (errno != ENOENT && errno != ECONNREFUSED) return -1;
    if (now_ms() >= deadline) {
      dbg("daemon did not answer in time");
      return -1;
    }
  }
}
