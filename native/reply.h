#ifndef VRIFT_REPLY_H
#define VRIFT_REPLY_H
#include <stdint.h>

#include "buf.h"
#include "msgpack.h"

/* The daemon's answer to a compile (ipc/messages/compile.ts), pointing into the reply's
 * bytes: hit, run, split, pass or error. Lists are kept as readers at their first element,
 * already checked to hold what they should. */
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

/* -1 when `body` is not a reply this shim can use; unknown keys are skipped. */
int parse_reply(const buf_t *body, reply_t *rep);

/* A length-counted string equals the literal. */
int str_is(const char *s, uint32_t n, const char *lit);
/* Reads past `n` strings; -1 at the first that is not one. */
int check_strs(mp_reader *r, uint32_t n);
/* `n` strings from `r` (a copy of the reader: it is not advanced) as a NULL-terminated,
 * NUL-terminated array; NULL when one is missing or out of memory. */
char **strs_dup(mp_reader r, uint32_t n);

#endif
