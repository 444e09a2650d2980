#define _GNU_SOURCE
#include "reply.h"

#include <stdlib.h>
#include <string.h>

int str_is(const char *s, uint32_t n, const char *lit) {
  return n == strlen(lit) && memcmp(s, lit, n) == 0;
}

int check_strs(mp_reader *r, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const char *s; uint32_t l;
    if (mp_read_str(r, &s, &l)) return -1;
  }
  return 0;
}

/* Unknown keys are skipped so the daemon can add fields without a protocol bump. */
int parse_reply(const buf_t *body, reply_t *rep) {
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

char **strs_dup(mp_reader r, uint32_t n) {
  char **v = calloc((size_t)n + 1, sizeof *v);
  if (!v) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    const char *s; uint32_t l;
    if (mp_read_str(&r, &s, &l) || !(v[i] = strndup(s, l))) return NULL;
  }
  return v;
}
