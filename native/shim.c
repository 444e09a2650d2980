/* vrift-shim: sits where the compiler was, asks vriftd whether this exact call was
 * done before, and otherwise runs the compiler itself. Anything unexpected falls
 * back to running the compiler exactly as the build asked (fail open). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include "daemon.h"
#include "depfile.h"
#include "msgpack.h"
#include "proto.h"
#include "spawn.h"
#include "split.h"
#include "util.h"
#include "zmtp.h"

extern char **environ;

static const char USAGE[] =
    "usage: vrift-shim <compiler> [args...]\n"
    "   or: symlink gcc/cc/g++/c++/clang/clang++/rustc to vrift-shim, first on PATH\n"
    "\n"
    "Asks vriftd whether this exact compile was done before and replays it; runs the\n"
    "compiler otherwise. VRIFT_DISABLE=1 runs the compiler directly.\n";

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

/* *named_self: the call named the shim itself, so argv[0] must not reach the
 * compiler as is (gcc finds cc1 relative to argv[0]'s directory). */
static int resolve_compiler(const char *named, int masquerade, const char *cwd, char *out, size_t cap, int *named_self) {
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

/* The build's own logical directory (symlinks kept) when $PWD is accurate, as
 * ccache does: relative paths in the arguments are relative to it. */
static void apparent_cwd(char *out, size_t cap) {
  const char *pwd = getenv("PWD");
  struct stat a, b;
  if (pwd && pwd[0] == '/' && strlen(pwd) < cap && stat(pwd, &a) == 0 && stat(".", &b) == 0 &&
      a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
    strcpy(out, pwd);
    return;
  }
  if (!getcwd(out, cap)) out[0] = 0;
}

static void __attribute__((noreturn)) run_original(const char *exe, char **argv) {
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



static void encode_header(buf_t *b, uint32_t nfields, const char *t) {
  mp_map(b, nfields);
  mp_cstr(b, "t");
  mp_cstr(b, t);
  mp_cstr(b, "v");
  mp_int(b, VRIFT_PROTOCOL_VERSION);
  mp_cstr(b, "build");
  mp_cstr(b, VRIFT_BUILD_ID);
}

typedef struct {
  const char *t; uint32_t tn;
  const uint8_t *out, *err; uint32_t outn, errn;
  int has_code_int; int64_t code;
  const char *code_str; uint32_t code_strn;
  const char *id; uint32_t idn;
  mp_reader argv, env; uint32_t argc, envc; int has_argv, has_env;
  mp_reader files; uint32_t filesc; int has_files;
  mp_reader col; uint32_t colc; int has_col;
  /* -MMD's depfile, for the shim to write (daemon/handlers/compile.ts RunReply.mmd):
   * [full depfile to read (one of col), depfile to write, phony, targets, dirs]. */
  const char *mmd_in, *mmd_out; uint32_t mmd_inn, mmd_outn; int mmd_phony;
  mp_reader mmd_targets, mmd_dirs; uint32_t mmd_nt, mmd_nd; int has_mmd;
  /* A split (SplitReply): the compiles' argument lists, and the link's. */
  mp_reader cmds, link; uint32_t ncmds, linkc; int has_cmds, has_link;
} reply_t;

/* Writes `d` into the daemon's spare file `spare` and renames it onto `path`: no inode is
 * created while the build waits (daemon/frontends/materialize.ts OutputSpares). The spare
 * must be what the daemon made: a regular, empty, singly linked file of our user (opened
 * without following a symlink). Returns -1 when it cannot be used; the spare is removed
 * then and the caller creates the file itself. */
static int write_via_spare(const char *path, const char *spare, const uint8_t *d, uint32_t dl, mode_t mode) {
  int fd = open(spare, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlink(spare); /* a symlink, say: never followed, never left for someone else */
    return -1;
  }
  struct stat st;
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && st.st_nlink == 1 &&
           st.st_uid == geteuid() && fchmod(fd, mode) == 0 && write_all(fd, d, dl) == 0;
  if (close(fd) != 0) ok = 0;
  if (ok && (unlink(path) == 0 || errno == ENOENT) && rename(spare, path) == 0) return 0;
  unlink(spare);
  return -1;
}

/* A hit's outputs, written the way the compiler would: a fresh file (unlink, then
 * O_EXCL) with 0666 minus the umask. Any failure (e.g. the output directory does not
 * exist) returns -1 and the caller runs the compiler, which then fails or succeeds the
 * way it would have without vrift. An entry may name a spare file to use instead of
 * creating one (write_via_spare). */
static int write_outputs(const reply_t *rep) {
  mp_reader r = rep->files;
  int um = -1; /* read when a spare first needs it: umask has no read-only call */
  for (uint32_t i = 0; i < rep->filesc; i++) {
    uint32_t n, pl, dl, sl = 0;
    const char *p, *sp = NULL;
    const uint8_t *d;
    if (mp_read_array(&r, &n) || mp_read_str(&r, &p, &pl) || mp_read_bytes(&r, &d, &dl)) return -1;
    if (n == 3 && mp_read_str(&r, &sp, &sl)) return -1; /* parse_reply checked the shape */
    char path[4096], spare[4096];
    if (pl == 0 || pl >= sizeof path || sl >= sizeof spare) return -1;
    memcpy(path, p, pl);
    path[pl] = 0;
    if (sp && sl > 0) {
      memcpy(spare, sp, sl);
      spare[sl] = 0;
      if (um < 0) {
        um = (int)umask(0);
        umask((mode_t)um);
      }
      if (write_via_spare(path, spare, d, dl, 0666 & ~(mode_t)um) == 0) continue;
    }
    if (unlink(path) != 0 && errno != ENOENT) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    int bad = write_all(fd, d, dl) != 0;
    if (close(fd) != 0) bad = 1;
    if (bad) {
      unlink(path);
      return -1;
    }
  }
  return 0;
}

static int str_is(const char *s, uint32_t n, const char *lit) {
  return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

static int check_strs(mp_reader *r, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const char *s; uint32_t l;
    if (mp_read_str(r, &s, &l)) return -1;
  }
  return 0;
}

/* Unknown keys are skipped so the daemon can add fields without a protocol bump. */
static int parse_reply(const buf_t *body, reply_t *rep) {
  memset(rep, 0, sizeof *rep);
  mp_reader r = {body->p, body->p + body->len};
  uint32_t n;
  if (mp_read_map(&r, &n)) return -1;
  for (uint32_t i = 0; i < n; i++) {
    const char *k; uint32_t kl;
    if (mp_read_str(&r, &k, &kl)) return -1;
    if (mp_is_nil(&r)) { if (mp_skip(&r)) return -1; continue; }
    int bad = 0;
    if (str_is(k, kl, "t")) bad = mp_read_str(&r, &rep->t, &rep->tn);
    else if (str_is(k, kl, "out")) bad = mp_read_bytes(&r, &rep->out, &rep->outn);
    else if (str_is(k, kl, "err")) bad = mp_read_bytes(&r, &rep->err, &rep->errn);
    else if (str_is(k, kl, "id")) bad = mp_read_str(&r, &rep->id, &rep->idn);
    else if (str_is(k, kl, "code")) {
      if (mp_read_int(&r, &rep->code) == 0) rep->has_code_int = 1;
      else { r.p = (const uint8_t *)k + kl; bad = mp_read_str(&r, &rep->code_str, &rep->code_strn); }
    } else if (str_is(k, kl, "files")) {
      uint32_t c;
      if (mp_read_array(&r, &c)) return -1;
      rep->files = r; rep->filesc = c; rep->has_files = 1;
      for (uint32_t j = 0; j < c && !bad; j++) {
        uint32_t n; const char *fp; uint32_t fpl; const uint8_t *d; uint32_t dl;
        bad = mp_read_array(&r, &n) || n < 2 || n > 3 || mp_read_str(&r, &fp, &fpl) || mp_read_bytes(&r, &d, &dl) ||
              (n == 3 && mp_read_str(&r, &fp, &fpl)); /* [path, bytes] or [path, bytes, spare] */
      }
    } else if (str_is(k, kl, "col")) {
      uint32_t c;
      if (mp_read_array(&r, &c)) return -1;
      rep->col = r; rep->colc = c; rep->has_col = 1;
      bad = check_strs(&r, c);
    } else if (str_is(k, kl, "mmd")) {
      uint32_t c;
      bad = mp_read_array(&r, &c) || c != 5 || mp_read_str(&r, &rep->mmd_in, &rep->mmd_inn) ||
            mp_read_str(&r, &rep->mmd_out, &rep->mmd_outn) || mp_read_bool(&r, &rep->mmd_phony) ||
            mp_read_array(&r, &rep->mmd_nt);
      if (!bad) { rep->mmd_targets = r; bad = check_strs(&r, rep->mmd_nt); }
      if (!bad) bad = mp_read_array(&r, &rep->mmd_nd);
      if (!bad) { rep->mmd_dirs = r; bad = check_strs(&r, rep->mmd_nd); }
      rep->has_mmd = !bad;
    } else if (str_is(k, kl, "cmds")) {
      uint32_t c;
      if (mp_read_array(&r, &c)) return -1;
      rep->cmds = r; rep->ncmds = c; rep->has_cmds = 1;
      for (uint32_t j = 0; j < c && !bad; j++) {
        uint32_t m;
        bad = mp_read_array(&r, &m) || check_strs(&r, m);
      }
    } else if (str_is(k, kl, "link")) {
      uint32_t c;
      if (mp_read_array(&r, &c)) return -1;
      rep->link = r; rep->linkc = c; rep->has_link = 1;
      bad = check_strs(&r, c);
    } else if (str_is(k, kl, "argv") || str_is(k, kl, "env")) {
      int is_argv = k[0] == 'a';
      uint32_t c;
      if (mp_read_array(&r, &c)) return -1;
      if (is_argv) { rep->argv = r; rep->argc = c; rep->has_argv = 1; }
      else { rep->env = r; rep->envc = c; rep->has_env = 1; }
      bad = check_strs(&r, c);
    } else bad = mp_skip(&r);
    if (bad) return -1;
  }
  return rep->t ? 0 : -1;
}

static char **strs_dup(mp_reader r, uint32_t n) {
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    const char *s; uint32_t l;
    if (mp_read_str(&r, &s, &l) || !(v[i] = strndup(s, l))) return NULL;
  }
  return v;
}

/* environ plus the daemon's entries, a daemon entry replacing ours of the same name. */
static char **merge_env(char **add) {
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

static int request(zmtp_t *z, const buf_t *req, buf_t *rep, int64_t timeout) {
  int64_t dl = now_ms() + timeout;
  if (zmtp_send(z, req->p, req->len, dl) || zmtp_recv(z, rep, dl)) {
    dbg("request failed: %s", strerror(errno));
    return -1;
  }
  return 0;
}

/* A daemon of another build is asked to leave; the next call starts ours. */
static void replace_daemon(const vrift_paths *p) {
  zmtp_t z;
  if (zmtp_dial(&z, p->sock) != 0) return;
  buf_t req = {0}, rep = {0};
  encode_header(&req, 3, "shutdown");
  if (!req.oom && zmtp_handshake(&z, now_ms() + 2000) == 0) request(&z, &req, &rep, 2000);
  zmtp_close(&z);
  buf_free(&req);
  buf_free(&rep);
}

/* VRIFT_SHIM_TRACE=FILE: one line per call with where its time went: the start (µs,
 * CLOCK_MONOTONIC), then µs since it: connected, answered, compiler done (0 unless run),
 * the end; the kind (hit, run1 = one-way report, run2 = waited for the daemon); report
 * encoded (files read, -MMD's depfile written) and report sent (0 unless run).
 * For profiling a build (bench/README.md); nothing is measured without it. */
enum { T_START, T_CONN, T_ANSWER, T_RAN, T_COL, T_SENT, T_N };
static int64_t trace_at[T_N];
static int64_t mono_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static void trace_mark(int i) {
  if (trace_at[T_START]) trace_at[i] = mono_us();
}
static void trace_write(const char *kind) {
  const char *f = getenv("VRIFT_SHIM_TRACE");
  if (!f || !trace_at[T_START]) return;
  int64_t s = trace_at[T_START], end = mono_us();
  char line[200];
  int n = snprintf(line, sizeof line, "%lld %lld %lld %lld %lld %s %lld %lld\n", (long long)s, (long long)(trace_at[T_CONN] - s),
                   (long long)(trace_at[T_ANSWER] - s), (long long)(trace_at[T_RAN] ? trace_at[T_RAN] - s : 0), (long long)(end - s), kind,
                   (long long)(trace_at[T_COL] ? trace_at[T_COL] - s : 0), (long long)(trace_at[T_SENT] ? trace_at[T_SENT] - s : 0));
  int fd = open(f, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0 && n > 0) {
    write_all(fd, line, (size_t)n);
    close(fd);
  }
}

/* Past this in all, the report waits for the daemon to read the files itself: a big
 * message would also reach the daemon later than a next call, which then misses. */
#define COLLECT_MAX ((size_t)1 << 20)

/* Appends `path` (a regular file of at most `cap` bytes) to `b` as a msgpack bin, read
 * straight into the buffer; its size in *size, its mtime in *mtime_ms. */
static int put_file(buf_t *b, const char *path, size_t cap, size_t *size, int64_t *mtime_ms) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st = {0};
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size <= cap;
  size_t n = ok ? (size_t)st.st_size : 0, got = 0;
  if (ok) {
    mp_bin_head(b, n);
    ok = buf_reserve(b, n + 1) == 0;
  }
  /* One byte more than fstat said: a file that grew since is refused, not cut. */
  while (ok) {
    ssize_t r = read(fd, b->p + b->len + got, n + 1 - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { ok = r == 0 && got == n; break; }
    got += (size_t)r;
    if (got > n) ok = 0;
  }
  close(fd);
  if (!ok) return -1;
  b->len += n;
  *size = n;
  *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
  return 0;
}

/* Like the daemon's writeFileAtomic: a failed write (a full disk) leaves the compiler's
 * file as it was, for the daemon to read in the two-way report that follows. */
static int write_atomic(const char *path, const uint8_t *p, size_t n) {
  char tmp[4352];
  const char *slash = strrchr(path, '/');
  if (!slash) return -1;
  int k = snprintf(tmp, sizeof tmp, "%.*s.%s.vrift-%d", (int)(slash - path + 1), path, slash + 1, (int)getpid());
  if (k < 0 || (size_t)k >= sizeof tmp) return -1;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) return -1;
  int ok = write_all(fd, p, n) == 0;
  ok = close(fd) == 0 && ok;
  if (ok && rename(tmp, path) == 0) return 0;
  unlink(tmp);
  return -1;
}

static lstr *lstrs(mp_reader r, uint32_t n) {
  lstr *v = calloc((size_t)n + 1, sizeof *v);
  for (uint32_t i = 0; v && i < n; i++)
    if (mp_read_str(&r, &v[i].s, &v[i].n)) { free(v); return NULL; }
  return v;
}

/* -MMD's depfile, written here so the report need not wait for the daemon to write it:
 * rendered from the full one the compiler wrote (`full`, read from rep->mmd_in). */
static int write_mmd(const reply_t *rep, const uint8_t *full, size_t full_len) {
  char path[4096];
  if (rep->mmd_outn == 0 || rep->mmd_outn >= sizeof path || rep->mmd_out[0] != '/') return -1;
  memcpy(path, rep->mmd_out, rep->mmd_outn);
  path[rep->mmd_outn] = 0;
  lstr *targets = lstrs(rep->mmd_targets, rep->mmd_nt), *dirs = lstrs(rep->mmd_dirs, rep->mmd_nd);
  buf_t out = {0};
  int ok = targets && dirs && mmd_render(full, full_len, targets, rep->mmd_nt, dirs, rep->mmd_nd, rep->mmd_phony, &out) == 0 &&
           write_atomic(path, out.p, out.len) == 0;
  free(targets);
  free(dirs);
  buf_free(&out);
  return ok ? 0 : -1;
}

/* A one-way report (ipc/messages/done.ts): appends `files` with every file the daemon named
 * in `col`, read now that the compiler has exited and before the build can change them,
 * after writing -MMD's depfile when the daemon asked for it (`mmd`).
 * -1 when one cannot be read or they are too big: the report then waits for the daemon. */
static int put_collected(buf_t *req, const reply_t *rep) {
  mp_reader r = rep->col;
  uint32_t n = rep->colc;
  size_t total = 0, dep_at = 0, dep_len = 0;
  int dep_found = 0;
  if (n == 0 || n > 16) return -1;
  mp_cstr(req, "files");
  mp_array(req, n);
  for (uint32_t i = 0; i < n; i++) {
    char path[4096];
    const char *name; uint32_t len;
    if (mp_read_str(&r, &name, &len) || len == 0 || len >= sizeof path) return -1;
    memcpy(path, name, len);
    path[len] = 0;
    mp_array(req, 3);
    mp_str(req, name, len);
    size_t size;
    int64_t mtime;
    if (put_file(req, path, COLLECT_MAX - total, &size, &mtime) != 0) return -1;
    total += size;
    if (rep->has_mmd && len == rep->mmd_inn && memcmp(name, rep->mmd_in, len) == 0) {
      dep_found = 1;
      dep_at = req->len - size;
      dep_len = size;
    }
    mp_int(req, mtime);
  }
  if (req->oom) return -1;
  if (rep->has_mmd && (!dep_found || write_mmd(rep, req->p + dep_at, dep_len) != 0)) return -1;
  return 0;
}

/* The report of a compile: one-way with the files (put_collected), else two-way without. */
static int encode_done(buf_t *req, const reply_t *rep, const run_result *res, int oneway) {
  int sent_out = !res->nocache;
  req->len = 0;
  encode_header(req, 7 + (res->nocache != 0) + (res->signal != 0) + (oneway ? 2 : 0), "done");
  mp_cstr(req, "id");
  mp_str(req, rep->id, rep->idn);
  mp_cstr(req, "code");
  mp_int(req, res->code);
  /* With nocache the captures are incomplete or were not seen: don't ship them. */
  mp_cstr(req, "out");
  mp_bin(req, sent_out ? res->out.p : NULL, sent_out ? res->out.len : 0);
  mp_cstr(req, "err");
  mp_bin(req, sent_out ? res->err.p : NULL, sent_out ? res->err.len : 0);
  if (res->nocache) { mp_cstr(req, "nocache"); mp_bool(req, 1); }
  if (res->signal) { mp_cstr(req, "signal"); mp_int(req, res->signal); }
  if (!oneway) return 0;
  mp_cstr(req, "nr");
  mp_bool(req, 1);
  return put_collected(req, rep);
}

/* A command with several sources (split.c); back here only when nothing of it has run. */
static void do_split(const reply_t *rep, const char *exe) {
  if (!rep->has_cmds || rep->ncmds == 0 || rep->ncmds > 1u << 16) return;
  char ***cmds = calloc(rep->ncmds, sizeof *cmds);
  if (!cmds) return;
  mp_reader r = rep->cmds;
  for (uint32_t i = 0; i < rep->ncmds; i++) {
    uint32_t m;
    if (mp_read_array(&r, &m) || !(cmds[i] = strs_dup(r, m))) return;
    if (check_strs(&r, m)) return;
  }
  char **link = rep->has_link ? strs_dup(rep->link, rep->linkc) : NULL;
  if (rep->has_link && !link) return;
  run_split(exe, cmds, rep->ncmds, link);
}

static void __attribute__((noreturn)) do_run(zmtp_t *z, reply_t *rep, const char *exe, char **cargv, const char *cwd) {
  char **rargv = rep->has_argv && rep->argc > 0 ? strs_dup(rep->argv, rep->argc) : NULL;
  char **radd = rep->has_env ? strs_dup(rep->env, rep->envc) : calloc(1, sizeof(char *));
  char **renv = radd ? merge_env(radd) : NULL;
  char path[4096];
  if (!rargv || !renv || !rep->id) { zmtp_close(z); run_original(exe, cargv); }
  /* Resolved like the build's own call, so a bare name never finds the shim. */
  if (resolve_compiler(rargv[0], 0, cwd, path, sizeof path, &(int){0})) { zmtp_close(z); run_original(exe, cargv); }

  run_result res;
  if (run_captured(path, rargv, renv, &res) != 0 || res.exec_errno) {
    dbg("run %s failed: %s", path, strerror(res.exec_errno ? res.exec_errno : errno));
    fallback("run");
    zmtp_close(z);
    run_original(exe, cargv);
  }
  trace_mark(T_RAN);
  buf_t req = {0}, ack = {0};
  /* A successful compile whose files the daemon named goes one-way: they travel with the
   * report and the build goes on without waiting for the daemon. Anything else waits for
   * its `ok`, the daemon reading the files itself before it answers. */
  int oneway = rep->has_col && res.code == 0 && !res.nocache && !res.signal && encode_done(&req, rep, &res, 1) == 0 && !req.oom;
  if (!oneway) encode_done(&req, rep, &res, 0);
  trace_mark(T_COL);
  if (oneway) {
    /* In the daemon's socket once sent: closing ours right after loses nothing. A big
     * object would otherwise wait for the daemon to drain the socket's default 208 KiB. */
    zmtp_sndbuf(z, req.len + 4096);
    if (zmtp_send(z, req.p, req.len, now_ms() + env_ms("VRIFT_DONE_TIMEOUT_MS", 10000)) != 0) fallback("done");
  } else if (req.oom || request(z, &req, &ack, env_ms("VRIFT_DONE_TIMEOUT_MS", 10000)) != 0) {
    fallback("done");
  }
  trace_mark(T_SENT);
  zmtp_close(z);
  dbg("miss: ran %s in %s, exit %d, reported %s", path, cwd, res.code, oneway ? "one-way" : "and waited");
  trace_write(oneway ? "run1" : "run2");
  exit_like(res.code, res.signal);
}

/* Under `vrift run` the build's processes carry the exec interceptor (native/intercept.c):
 * the compiler and what it runs do not, so nothing under it is routed again (gcc's
 * lto-wrapper runs gcc) and it runs in the environment it would have without vrift. The
 * masquerade directory the interceptor hides from dynamically linked processes goes back
 * first on PATH, as plain masquerade has it: a compiler that runs another by name
 * (rustc's linker `cc`) still reaches the shim. */
static void leave_interceptor(void) {
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

int main(int argc, char **argv) {
  leave_interceptor();
  const char *me = strrchr(argv[0], '/');
  me = me ? me + 1 : argv[0];
  int masquerade = strncmp(me, "vrift", 5) != 0;
  char **cargv = argv;
  if (!masquerade) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
      write_all(argc < 2 ? 2 : 1, USAGE, sizeof USAGE - 1);
      return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
      dprintf(1, "vrift-shim %s\n", VRIFT_BUILD_ID);
      return 0;
    }
    cargv = argv + 1;
  }
  char cwd[4096], exe[4096];
  apparent_cwd(cwd, sizeof cwd);
  exe[0] = 0;
  int named_self = 0;
  if (!cwd[0] || resolve_compiler(cargv[0], masquerade, cwd, exe, sizeof exe, &named_self) != 0) exe[0] = 0;
  if (!exe[0]) run_original(exe, cargv);
  /* The daemon sees the call as named; the compiler sees itself as it would with no
   * shim on PATH: same basename (clang's driver mode), its own directory (gcc's). */
  char *named0 = cargv[0];
  if (named_self) cargv[0] = exe;
  if (env_flag("VRIFT_DISABLE")) run_original(exe, cargv);

  if (getenv("VRIFT_SHIM_TRACE")) trace_at[T_START] = mono_us();
  vrift_paths p;
  if (paths_init(&p) != 0) run_original(exe, cargv);
  log_init(p.home);

  zmtp_t *z = malloc(sizeof *z);
  int conn = z ? daemon_connect(&p, z) : -1;
  if (conn != 0) {
    fallback(conn == -2 ? "start_failed" : "connect");
    run_original(exe, cargv);
  }
  trace_mark(T_CONN);

  buf_t req = {0}, body = {0};
  /* A call a split runs never splits again (split.h). */
  int can_split = getenv(SPLIT_DIR_ENV) == NULL;
  encode_header(&req, 12 + can_split, "compile");
  mp_cstr(&req, "cwd");
  mp_cstr(&req, cwd);
  mp_cstr(&req, "exe");
  mp_cstr(&req, exe);
  mp_cstr(&req, "argv");
  uint32_t n = 0;
  while (cargv[n]) n++;
  mp_array(&req, n);
  for (uint32_t i = 0; i < n; i++) mp_cstr(&req, i ? cargv[i] : named0);
  mp_cstr(&req, "env");
  n = 0;
  while (environ[n]) n++;
  mp_array(&req, n);
  for (uint32_t i = 0; i < n; i++) mp_cstr(&req, environ[i]);
  mp_cstr(&req, "tty");
  mp_bool(&req, isatty(2));
  /* We write a hit's outputs ourselves: the shims of a -j build do it in parallel, while
   * the daemon is one thread. */
  mp_cstr(&req, "wf");
  mp_bool(&req, 1);
  /* ... into spare files the daemon made ahead, when it has some (write_via_spare). */
  mp_cstr(&req, "sp");
  mp_bool(&req, 1);
  /* ... and report a compile one-way, with the files the daemon names (do_run). */
  mp_cstr(&req, "ow");
  mp_bool(&req, 1);
  /* Once we have exited, our one-way report is sent: `vrift stats` waits for it. */
  mp_cstr(&req, "pid");
  mp_int(&req, getpid());
  /* ... and run a command with several sources as one call per source (split.c). */
  if (can_split) {
    mp_cstr(&req, "sx");
    mp_bool(&req, 1);
  }
  if (req.oom || request(z, &req, &body, env_ms("VRIFT_TIMEOUT_MS", 10000)) != 0) {
    fallback(req.oom ? "oom" : "timeout");
    zmtp_close(z);
    run_original(exe, cargv);
  }
  buf_free(&req);
  trace_mark(T_ANSWER);

  reply_t rep;
  if (parse_reply(&body, &rep) != 0) {
    dbg("malformed reply (%zu bytes)", body.len);
    fallback("malformed_reply");
    zmtp_close(z);
    run_original(exe, cargv);
  }
  if (str_is(rep.t, rep.tn, "hit") && rep.has_code_int) {
    zmtp_close(z);
    if (rep.has_files && write_outputs(&rep) != 0) {
      fallback("write_outputs");
      run_original(exe, cargv);
    }
    if (rep.outn) write_all(1, rep.out, rep.outn);
    if (rep.errn) write_all(2, rep.err, rep.errn);
    dbg("hit: %s in %s, %u files written, exit %d", named0, cwd, rep.filesc, (int)(rep.code & 0xff));
    trace_write("hit");
    _exit((int)(rep.code & 0xff));
  }
  if (str_is(rep.t, rep.tn, "run")) do_run(z, &rep, exe, cargv, cwd);
  zmtp_close(z);
  if (str_is(rep.t, rep.tn, "split") && can_split) {
    do_split(&rep, exe);
    fallback("split");
  }
  if (str_is(rep.t, rep.tn, "error")) {
    dbg("daemon error %.*s", (int)rep.code_strn, rep.code_str ? rep.code_str : "");
    if (rep.code_str && str_is(rep.code_str, rep.code_strn, "EVERSION")) replace_daemon(&p);
  } else if (!str_is(rep.t, rep.tn, "pass")) {
    dbg("unexpected reply '%.*s'", (int)rep.tn, rep.t);
  } else {
    dbg("passed through (not cacheable, reason in vrift stats): %s in %s", named0, cwd);
  }
  run_original(exe, cargv);
}
