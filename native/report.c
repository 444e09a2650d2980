#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "depfile.h"
#include "msgpack.h"
#include "request.h"
#include "util.h"

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

/* Appends `files` with every file the daemon named in `col`, then writes -MMD's depfile
 * from the one among them the daemon named in `mmd`. */
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

int encode_done(buf_t *req, const reply_t *rep, const run_result *res, int oneway) {
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
