#include "run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "lookup.h"
#include "report.h"
#include "request.h"
#include "spawn.h"
#include "util.h"

void run_and_report(zmtp_t *z, const reply_t *rep, const char *exe, char **cargv, const char *cwd, trace_t *tr) {
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
  trace_mark(tr, T_RAN);
  buf_t req = {0}, ack = {0};
  /* A successful compile whose files the daemon named goes one-way: they travel with the
   * report and the build goes on without waiting for the daemon. Anything else waits for
   * its `ok`, the daemon reading the files itself before it answers. */
  int oneway = rep->has_col && res.code == 0 && !res.nocache && !res.signal && encode_done(&req, rep, &res, 1) == 0 && !req.oom;
  if (!oneway) encode_done(&req, rep, &res, 0);
  trace_mark(tr, T_COL);
  if (oneway) {
    /* In the daemon's socket once sent: closing ours right after loses nothing. A big
     * object would otherwise wait for the daemon to drain the socket's default 208 KiB. */
    zmtp_sndbuf(z, req.len + 4096);
    if (zmtp_send(z, req.p, req.len, now_ms() + env_ms("VRIFT_DONE_TIMEOUT_MS", 10000)) != 0) fallback("done");
  } else if (req.oom || request(z, &req, &ack, env_ms("VRIFT_DONE_TIMEOUT_MS", 10000)) != 0) {
    fallback("done");
  }
  trace_mark(tr, T_SENT);
  zmtp_close(z);
  dbg("miss: ran %s in %s, exit %d, reported %s", path, cwd, res.code, oneway ? "one-way" : "and waited");
  trace_write(tr, oneway ? "run1" : "run2");
  exit_like(res.code, res.signal);
}
