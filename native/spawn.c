#define _GNU_SOURCE
#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

/* Past this a stream is still passed through but not kept: the entry would be huge
 * and such output is rarely worth caching. */
#define CAPTURE_CAP ((size_t)64 << 20)

static volatile pid_t child_pid;

/* Signals aimed at the shim alone (make's timeout, kill <pid>) must reach the
 * compiler, or it would outlive the build step that was cancelled. */
static void forward(int sig) {
  if (child_pid > 0) kill(child_pid, sig);
}

static const int FORWARDED[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

typedef struct {
  int fd;      /* read end, -1 once at EOF */
  int out_fd;  /* our fd 1 or 2 */
  int pass;    /* still delivering to out_fd */
  int full;    /* capture cap reached */
  buf_t *cap;
} stream;

/* Returns bytes read, 0 at EOF, -1 if nothing is available right now. */
static ssize_t pump(stream *s, run_result *r) {
  uint8_t chunk[65536];
  ssize_t n = read(s->fd, chunk, sizeof chunk);
  if (n < 0) return (errno == EINTR || errno == EAGAIN) ? -1 : 0;
  if (n == 0) return 0;
  if (s->pass && write_all(s->out_fd, chunk, (size_t)n) != 0) {
    s->pass = 0; /* e.g. EPIPE: the reader left; what we'd store is not what was seen */
    r->nocache = 1;
  }
  if (!s->full) {
    if (s->cap->len + (size_t)n > CAPTURE_CAP) {
      s->full = 1;
      r->nocache = 1;
      buf_free(s->cap);
    } else {
      buf_put(s->cap, chunk, (size_t)n);
      if (s->cap->oom) { s->full = 1; r->nocache = 1; buf_free(s->cap); }
    }
  }
  return n;
}

static void close_stream(stream *s) {
  if (s->fd >= 0) close(s->fd);
  s->fd = -1;
}

int run_captured(const char *path, char *const argv[], char *const envp[], run_result *r) {
  int po[2], pe[2], px[2];
  memset(r, 0, sizeof *r);
  if (pipe2(po, O_CLOEXEC)) return -1;
  if (pipe2(pe, O_CLOEXEC)) { close(po[0]); close(po[1]); return -1; }
  /* Closed by a successful exec; carries errno when exec fails, so the shim can still
   * run the original command instead of reporting a bogus compile. */
  if (pipe2(px, O_CLOEXEC)) { close(po[0]); close(po[1]); close(pe[0]); close(pe[1]); return -1; }

  struct sigaction sa, old[4];
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < 4; i++) sigaction(FORWARDED[i], &sa, &old[i]);
  /* A closed stdout must end our passthrough, not kill the shim mid-compile. */
  struct sigaction ign = {0}, oldpipe;
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &oldpipe);

  /* Blocked across fork so a signal can't land before child_pid names the child. */
  sigset_t fwd, oldmask;
  sigemptyset(&fwd);
  for (int i = 0; i < 4; i++) sigaddset(&fwd, FORWARDED[i]);
  sigprocmask(SIG_BLOCK, &fwd, &oldmask);
  pid_t pid = fork();
  if (pid == 0) {
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    for (int i = 0; i < 4; i++) sigaction(FORWARDED[i], &old[i], NULL);
    sigaction(SIGPIPE, &dfl, NULL); /* SIG_IGN would survive exec */
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    dup2(po[1], 1);
    dup2(pe[1], 2);
    execve(path, argv, envp);
    int e = errno;
    (void)!write(px[1], &e, sizeof e);
    _exit(127);
  }
  if (pid > 0) child_pid = pid;
  sigprocmask(SIG_SETMASK, &oldmask, NULL);
  close(po[1]);
  close(pe[1]);
  close(px[1]);
  if (pid < 0) {
    int e = errno;
    close(po[0]); close(pe[0]); close(px[0]);
    sigaction(SIGPIPE, &oldpipe, NULL);
    for (int i = 0; i < 4; i++) sigaction(FORWARDED[i], &old[i], NULL);
    errno = e;
    return -1;
  }

  int e = 0;
  ssize_t got;
  while ((got = read(px[0], &e, sizeof e)) < 0 && errno == EINTR) {}
  close(px[0]);
  if (got == (ssize_t)sizeof e) r->exec_errno = e ? e : ENOEXEC;

  stream s[2] = {{po[0], 1, 1, 0, &r->out}, {pe[0], 2, 1, 0, &r->err}};
  fcntl(po[0], F_SETFL, O_NONBLOCK);
  fcntl(pe[0], F_SETFL, O_NONBLOCK);
  /* Watching the child itself, not only EOF, keeps a grandchild that inherited the
   * pipes (a background server the compiler started) from hanging the build. */
  int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

  while (s[0].fd >= 0 || s[1].fd >= 0) {
    struct pollfd p[3];
    int np = 0, idx[2] = {-1, -1};
    for (int i = 0; i < 2; i++)
      if (s[i].fd >= 0) { idx[i] = np; p[np++] = (struct pollfd){s[i].fd, POLLIN, 0}; }
    int pfi = -1;
    if (pidfd >= 0) { pfi = np; p[np++] = (struct pollfd){pidfd, POLLIN, 0}; }
    if (poll(p, (nfds_t)np, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; i++) {
      if (idx[i] < 0 || !p[idx[i]].revents) continue;
      if (pump(&s[i], r) == 0) close_stream(&s[i]);
    }
    if (pfi >= 0 && p[pfi].revents) {
      /* Exited: whatever it wrote is already in the pipes; drain, then stop. */
      for (int i = 0; i < 2; i++) {
        ssize_t n = -1;
        while (s[i].fd >= 0 && (n = pump(&s[i], r)) > 0) {}
        if (s[i].fd >= 0 && n == 0) close_stream(&s[i]);
        if (s[i].fd >= 0) { r->nocache = 1; close_stream(&s[i]); }
      }
    }
  }
  close_stream(&s[0]);
  close_stream(&s[1]);
  if (pidfd >= 0) close(pidfd);

  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
  child_pid = 0;
  sigaction(SIGPIPE, &oldpipe, NULL);
  for (int i = 0; i < 4; i++) sigaction(FORWARDED[i], &old[i], NULL);
  if (WIFSIGNALED(st)) {
    r->signal = WTERMSIG(st);
    r->code = 128 + r->signal;
  } else {
    r->code = WEXITSTATUS(st);
  }
  return 0;
}
