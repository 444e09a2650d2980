#define _GNU_SOURCE
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

/* The daemon's V8 young generation is capped at 4 MB semi-spaces, below Node's default:
 * a long-lived daemon stays smaller with lookup time and CPU unchanged. Also in
 * shim/daemon-control.ts and daemon/main.ts's #! line. */
#define VRIFT_DAEMON_NODE_FLAGS "--max-semi-space-size=4"
#include <unistd.h>

#include "proto.h"
#include "request.h"
#include "util.h"

extern char **environ;

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
static int spawn_daemon(int lockfd, const char *key) {
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
    setenv("VRIFT_START_KEY", key, 1);
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

/* A failed start, remembered (ipc/start-failure.ts has the file's format): one per instance
 * in $XDG_RUNTIME_DIR/vrift or /tmp/vrift-<uid>, reachable when VRIFT_HOME is not. A shim
 * whose configuration has the recorded identity (start_key) does not start the daemon
 * again: a build pays for the failure once, not per compile. */
#define MARKER_TTL_S (15 * 60)

static uint64_t fnv1a(uint64_t h, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV_INIT 0xcbf29ce484222325ULL

/* The directory, when it is ours alone (it may be in /tmp). */
static int marker_dir(char *out, size_t cap) {
  const char *x = getenv("XDG_RUNTIME_DIR");
  int n = x && x[0] == '/' ? snprintf(out, cap, "%s/vrift", x) : snprintf(out, cap, "/tmp/vrift-%u", (unsigned)geteuid());
  if (n < 0 || (size_t)n >= cap) return -1;
  if (mkdir(out, 0700) != 0 && errno != EEXIST) return -1;
  struct stat st;
  if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) return -1;
  return 0;
}

static int marker_path(const vrift_paths *p, const char *ext, char *out, size_t cap) {
  char dir[4096];
  if (marker_dir(dir, sizeof dir) != 0) return -1;
  uint64_t h = fnv1a(FNV_INIT, p->home, strlen(p->home));
  int n = snprintf(out, cap, "%s/%016llx.%s", dir, (unsigned long long)h, ext);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static uint64_t mix_stat(uint64_t h, const char *path, int content) {
  struct stat st;
  if (stat(path, &st) != 0) return fnv1a(h, "-", 1);
  int64_t v[6] = {(int64_t)st.st_ino, (int64_t)st.st_mode, (int64_t)st.st_uid, 0, 0, 0};
  if (content) {
    v[3] = (int64_t)st.st_size;
    v[4] = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    v[5] = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
  }
  return fnv1a(h, v, sizeof v);
}

/* What a daemon start depends on: this build of vrift, the home (what it is, its mode),
 * the user config file's identity, and the VRIFT_* environment minus what only tunes a
 * call. Any change of these and the next compile tries again. */
static void start_key(const vrift_paths *p, char out[17]) {
  static const char *const per_call[] = {"VRIFT_SESSION=", "VRIFT_SHIM_TRACE=", "VRIFT_DEBUG=", "VRIFT_TIMEOUT_MS=",
                                         "VRIFT_CONNECT_TIMEOUT_MS=", "VRIFT_START_TIMEOUT_MS=", "VRIFT_DONE_TIMEOUT_MS=",
                                         "VRIFT_SHIM_AS=", "VRIFT_START_KEY=", NULL};
  uint64_t h = fnv1a(FNV_INIT, VRIFT_BUILD_ID, sizeof VRIFT_BUILD_ID);
  h = fnv1a(h, p->home, strlen(p->home) + 1);
  h = mix_stat(h, p->home, 0);
  char cfg[4096];
  const char *c = getenv("VRIFT_CONFIG");
  if (c && *c) snprintf(cfg, sizeof cfg, "%s", c);
  else snprintf(cfg, sizeof cfg, "%s/config.toml", p->home);
  h = mix_stat(h, cfg, 1);
  uint64_t envsum = 0; /* order-independent */
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "VRIFT_", 6) != 0) continue;
    int skip = 0;
    for (const char *const *s = per_call; *s && !skip; s++) skip = strncmp(*e, *s, strlen(*s)) == 0;
    if (!skip) envsum += fnv1a(FNV_INIT, *e, strlen(*e));
  }
  h = fnv1a(h, &envsum, sizeof envsum);
  snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* 1 when a failed start is recorded for `key` and recent; its reason in `reason`. */
static int marker_read(const vrift_paths *p, const char *key, char *reason, size_t cap) {
  char path[4200], buf[4600];
  if (marker_path(p, "start", path, sizeof path) != 0) return 0;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return 0;
  struct stat st;
  ssize_t n = fstat(fd, &st) == 0 && st.st_uid == geteuid() ? read(fd, buf, sizeof buf - 1) : -1;
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char want[64];
  snprintf(want, sizeof want, "vrift-start-failure 1\nkey %s\n", key);
  if (strncmp(buf, want, strlen(want)) != 0 || time(NULL) - st.st_mtim.tv_sec > MARKER_TTL_S) return 0;
  const char *r = buf + strlen(want);
  size_t l = strcspn(r, "\n");
  snprintf(reason, cap, "%.*s", (int)l, r);
  return 1;
}

static void marker_write(const vrift_paths *p, const char *key, const char *reason) {
  char path[4200], tmp[4300];
  if (marker_path(p, "start", path, sizeof path) != 0) return;
  snprintf(tmp, sizeof tmp, "%s.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return;
  int ok = dprintf(fd, "vrift-start-failure 1\nkey %s\n%s\n", key, reason) > 0;
  if (close(fd) != 0 || !ok || rename(tmp, path) != 0) unlink(tmp);
}

/* Said once per terminal session and failure, on stderr only when it is a terminal: the
 * build's log or a compiler's captured output never gets it. */
static void start_notice(const vrift_paths *p, const char *key, const char *reason) {
  dbg("no daemon: %s", reason);
  if (!isatty(2)) return;
  char path[4200], line[128], have[128] = {0};
  if (marker_path(p, "told", path, sizeof path) != 0) return;
  int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (flock(fd, LOCK_EX) == 0) {
    snprintf(line, sizeof line, "%d %s\n", (int)getsid(0), key);
    ssize_t n = pread(fd, have, sizeof have - 1, 0);
    if (n < 0 || strcmp(have, line) != 0) {
      dprintf(2, "vrift: compiling without the cache: %s (`vrift daemon start` tries again)\n", reason);
      if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, line, strlen(line), 0);
    }
  }
  close(fd);
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
  char key[17], reason[4400];
  if (connect_once(p, z, hs) == 0) return 0;
  if (errno == ENAMETOOLONG) {
    start_key(p, key);
    snprintf(reason, sizeof reason, "cannot use VRIFT_HOME %s: its socket path is too long for a unix socket; set a shorter VRIFT_HOME", p->home);
    start_notice(p, key, reason);
    return -2;
  }
  if (errno != ENOENT && errno != ECONNREFUSED) {
    dbg("connect %s: %s", p->sock, strerror(errno));
    return -1;
  }
  if (mkdir_p(p->run_dir, 0700) != 0) {
    int e = errno;
    start_key(p, key);
    snprintf(reason, sizeof reason, "cannot use VRIFT_HOME %s: %s", p->home, e == ENOTDIR || e == EEXIST ? "it, or a directory above it, is a file" : strerror(e));
    start_notice(p, key, reason);
    return -2;
  }
  start_key(p, key);
  int64_t deadline = now_ms() + env_ms("VRIFT_START_TIMEOUT_MS", 10000);
  int started = 0, wait = 2;
  for (;;) {
    /* The lock, not the socket, says whether a daemon lives: free means nobody is
     * starting or running one. Start it once; free again after that means it died. */
    int fd, got = try_lock(p->lock, &fd);
    if (got < 0) { dbg("lock %s: %s", p->lock, strerror(errno)); return -1; }
    if (got == 1) {
      if (started || marker_read(p, key, reason, sizeof reason)) {
        close(fd);
        if (started) {
          /* The daemon writes why before it exits (daemon/main.ts); one that could not is
           * recorded here, so the next compile does not try again either. */
          dbg("daemon exited before answering");
          if (!marker_read(p, key, reason, sizeof reason)) {
            snprintf(reason, sizeof reason, "the daemon exited at start (its log: %s/log/vriftd.ndjson)", p->home);
            marker_write(p, key, reason);
          }
        }
        start_notice(p, key, reason);
        return -2;
      }
      dbg("starting daemon");
      int r = spawn_daemon(fd, key);
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

void replace_daemon(const vrift_paths *p) {
  zmtp_t z;
  if (zmtp_dial(&z, p->sock) != 0) return;
  buf_t req = {0}, rep = {0};
  encode_header(&req, 3, "shutdown");
  if (!req.oom && zmtp_handshake(&z, now_ms() + 2000) == 0) request(&z, &req, &rep, 2000);
  zmtp_close(&z);
  buf_free(&req);
  buf_free(&rep);
}
