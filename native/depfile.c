#include "depfile.h"

#include <stdlib.h>
#include <string.h>

/* daemon/frontends/gcc/depfile.ts parsePlain's NOT_PLAIN: `$`, `#`, CR, NUL, or a
 * backslash that is not a line continuation. */
static int plain(const uint8_t *in, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = in[i];
    if (c == '$' || c == '#' || c == '\r' || c == 0) return 0;
    if (c == '\\' && (i + 1 >= n || in[i + 1] != '\n')) return 0;
  }
  return 1;
}

typedef struct {
  const char *s;
  size_t n;
} word;

/* sysdirs.ts under(): is `w` below directory `d` ('' the current one, '/' the root)? */
static int under(const word *w, const char *d, size_t dn) {
  if (dn == 0) return w->n == 0 || w->s[0] != '/';
  if (dn == 1 && d[0] == '/') return w->n > 0 && w->s[0] == '/';
  return w->n > dn && memcmp(w->s, d, dn) == 0 && w->s[dn] == '/';
}

static int is_system(const word *w, const lstr *dirs, uint32_t nd) {
  long best = -1;
  int sys = 0;
  for (uint32_t i = 0; i < nd; i++) {
    if (dirs[i].n < 1) continue;
    const char *d = dirs[i].s + 1;
    size_t dn = dirs[i].n - 1;
    if (!under(w, d, dn)) continue;
    int s = dirs[i].s[0] == '1';
    if ((long)dn > best || ((long)dn == best && s)) {
      best = (long)dn;
      sys = s;
    }
  }
  return best >= 0 && sys;
}

/* libcpp's apply_vpath without a VPATH: no leading `./` (nor the slashes after it). */
static word strip_dot_slash(word w) {
  while (w.n >= 2 && w.s[0] == '.' && w.s[1] == '/') {
    w.s += 2;
    w.n -= 2;
    while (w.n > 0 && w.s[0] == '/') { w.s++; w.n--; }
  }
  return w;
}

/* writeGcc's writeName: wrapped before column 72 with a backslash-newline. */
static void put_name(buf_t *out, size_t *col, const char *s, size_t n) {
  if (*col) {
    if (*col + n > 72) {
      buf_put(out, " \\\n", 3);
      *col = 0;
    }
    (*col)++;
    buf_byte(out, ' ');
  }
  *col += n;
  buf_put(out, s, n);
}

static int blank(char c) { return c == ' ' || c == '\t'; }

int mmd_render(const uint8_t *in, size_t n, const lstr *targets, uint32_t nt, const lstr *dirs, uint32_t nd, int phony, buf_t *out) {
  if (!plain(in, n)) return -1;
  /* Continuations become blanks; then every line with a rule colon (one followed by a
   * blank or the line's end) gives the words after it. */
  char *t = malloc(n + 1);
  if (!t) return -1;
  memcpy(t, in, n);
  t[n] = 0;
  for (size_t i = 0; i + 1 < n; i++)
    if (t[i] == '\\' && t[i + 1] == '\n') t[i] = t[i + 1] = ' ';
  size_t cap = 64, nw = 0;
  word *ws = malloc(cap * sizeof *ws);
  int ok = ws != NULL;
  for (size_t i = 0; ok && i < n;) {
    size_t e = i;
    while (e < n && t[e] != '\n') e++;
    size_t c = i;
    while (c < e && !(t[c] == ':' && (c + 1 == e || blank(t[c + 1])))) c++;
    for (size_t k = c + 1; c < e && k < e;) {
      while (k < e && blank(t[k])) k++;
      size_t s = k;
      while (k < e && !blank(t[k])) k++;
      if (k == s) continue;
      if (nw == cap) {
        word *g = realloc(ws, (cap *= 2) * sizeof *ws);
        if (!g) { ok = 0; break; }
        ws = g;
      }
      ws[nw++] = (word){t + s, k - s};
    }
    i = e + 1;
  }
  if (ok && nw == 0) ok = 0; /* the daemon says why (no_dependencies) */
  if (ok) {
    /* The source stays; a system header goes. */
    size_t keep = 1;
    for (size_t i = 1; i < nw; i++)
      if (!is_system(&ws[i], dirs, nd)) ws[keep++] = ws[i];
    size_t col = 0;
    for (uint32_t i = 0; i < nt; i++) put_name(out, &col, targets[i].s, targets[i].n);
    buf_byte(out, ':');
    col++;
    for (size_t i = 0; i < keep; i++) {
      word w = strip_dot_slash(ws[i]);
      put_name(out, &col, w.s, w.n);
    }
    buf_byte(out, '\n');
    if (phony)
      for (size_t i = 1; i < keep; i++) {
        word w = strip_dot_slash(ws[i]);
        buf_put(out, w.s, w.n);
        buf_put(out, ":\n", 2);
      }
    ok = !out->oom;
  }
  free(ws);
  free(t);
  return ok ? 0 : -1;
}
