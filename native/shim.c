/* vrift-shim: sits where the compiler was, asks vriftd whether this exact call was
 * done before, and otherwise runs the compiler itself. Anything unexpected falls
 * back to running the compiler exactly as the build asked (fail open). This file is the
 * flow of one call; what each step does is in the file its header names. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler.h"
#include "daemon.h"
#include "lookup.h"
#include "outputs.h"
#include "proto.h"
#include "reply.h"
#include "request.h"
#include "run.h"
#include "split.h"
#include "trace.h"
#include "util.h"
#include "zmtp.h"

static const char USAGE[] =
    "usage: vrift-shim <compiler> [args...]\n"
    "   or: symlink gcc/cc/g++/c++/clang/clang++/rustc to vrift-shim, first on PATH\n"
    "\n"
    "Asks vriftd whether this exact compile was done before and replays it; runs the\n"
    "compiler otherwise. VRIFT_DISABLE=1 runs the compiler directly.\n";

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

  trace_t tr = {0};
  trace_start(&tr);
  vrift_paths p;
  if (paths_init(&p) != 0) run_original(exe, cargv);
  log_init(p.home);

  zmtp_t *z = malloc(sizeof *z);
  int conn = z ? daemon_connect(&p, z) : -1;
  if (conn != 0) {
    fallback(conn == -2 ? "start_failed" : "connect");
    run_original(exe, cargv);
  }
  trace_mark(&tr, T_CONN);

  buf_t req = {0}, body = {0};
  /* A call a split runs never splits again (split.h). */
  int can_split = getenv(SPLIT_DIR_ENV) == NULL;
  encode_compile(&req, cwd, exe, cargv, named0, can_split);
  if (req.oom || request(z, &req, &body, env_ms("VRIFT_TIMEOUT_MS", 10000)) != 0) {
    fallback(req.oom ? "oom" : "timeout");
    zmtp_close(z);
    run_original(exe, cargv);
  }
  buf_free(&req);
  trace_mark(&tr, T_ANSWER);

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
    trace_write(&tr, "hit");
    _exit((int)(rep.code & 0xff));
  }
  if (str_is(rep.t, rep.tn, "run")) run_and_report(z, &rep, exe, cargv, cwd, &tr);
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
