#define _GNU_SOURCE
#include "classify.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const NAMES[] = {"gcc", "g++", "cc", "c++", "clang", "clang++", "rustc"};

int is_compiler_name(const char *s) {
  const char *end = s + strlen(s);
  /* A version suffix: -12, -14, -12.2.0. */
  const char *v = end;
  while (v > s && ((v[-1] >= '0' && v[-1] <= '9') || v[-1] == '.')) v--;
  if (v < end && v > s + 1 && v[-1] == '-' && *v >= '0' && *v <= '9') end = v - 1;
  for (size_t i = 0; i < sizeof NAMES / sizeof *NAMES; i++) {
    size_t l = strlen(NAMES[i]);
    if ((size_t)(end - s) < l || memcmp(end - l, NAMES[i], l) != 0) continue;
    const char *pre = end - l;
    if (pre == s) return 1;
    /* A target prefix is a triple (arm-none-eabi-, x86_64-linux-gnu-): one dash inside at
     * least. my-cc, distcc, gcc-ar-12 and c++filt are not compilers. */
    if (pre[-1] != '-') continue;
    if (memchr(s, '-', (size_t)(pre - 1 - s))) return 1;
  }
  return 0;
}

static const char *base(const char *p) {
  const char *b = strrchr(p, '/');
  return b ? b + 1 : p;
}

/* Follows the chain link by link (readlink answers EINVAL on the last file): the final
 * file's name decides. Directory links on the way need no following: only names matter. */
static int classify(const char *path) {
  char cur[PATH_MAX], link[PATH_MAX], via[NAME_MAX + 1] = "";
  size_t n = strlen(path);
  if (n >= sizeof cur) return 0;
  memcpy(cur, path, n + 1);
  for (int hops = 0; hops < 40; hops++) {
    ssize_t l = readlink(cur, link, sizeof link - 1);
    if (l <= 0) break;
    link[l] = 0;
    size_t bl = strlen(base(cur));
    if (bl < sizeof via) memcpy(via, base(cur), bl + 1);
    if (link[0] == '/') {
      memcpy(cur, link, (size_t)l + 1);
    } else {
      size_t dir = (size_t)(base(cur) - cur);
      if (dir + (size_t)l >= sizeof cur) return 0;
      memcpy(cur + dir, link, (size_t)l + 1);
    }
  }
  const char *final = base(cur);
  if (!strcmp(final, "rustup") && via[0]) return !strcmp(via, "rustc");
  return is_compiler_name(final);
}

/* A small table, one entry per slot: a build execs a handful of distinct programs. */
#define SLOTS 64
struct slot {
  dev_t dev;
  ino_t ino;
  struct timespec mtime;
  unsigned char used, result;
  char path[238];
};
static struct slot table[SLOTS];
static char busy;

int is_compiler_exe(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  size_t n = strlen(path);
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)path[i]) * 16777619u;
  struct slot *s = &table[h % SLOTS];
  int cacheable = n < sizeof s->path;
  /* Never waited for: a fork of a threaded process may inherit it taken for good. */
  if (cacheable && !__atomic_test_and_set(&busy, __ATOMIC_ACQUIRE)) {
    int hit = s->used && s->dev == st.st_dev && s->ino == st.st_ino && s->mtime.tv_sec == st.st_mtim.tv_sec &&
              s->mtime.tv_nsec == st.st_mtim.tv_nsec && !strcmp(s->path, path);
    int r = s->result;
    __atomic_clear(&busy, __ATOMIC_RELEASE);
    if (hit) return r;
  }
  int r = classify(path);
  if (cacheable && !__atomic_test_and_set(&busy, __ATOMIC_ACQUIRE)) {
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->mtime = st.st_mtim;
    s->result = (unsigned char)r;
    memcpy(s->path, path, n + 1);
    s->used = 1;
    __atomic_clear(&busy, __ATOMIC_RELEASE);
  }
  return r;
}
