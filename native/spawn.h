#ifndef VRIFT_SPAWN_H
#define VRIFT_SPAWN_H

#include "buf.h"

/* What the daemon needs back after a `run`: the bytes exactly as the build saw them. */
typedef struct {
  int code;       /* exit status, or 128+signal */
  int signal;     /* 0 unless the compiler died of a signal */
  int nocache;    /* output was not fully captured or not fully delivered */
  int exec_errno; /* nonzero: the program never started, nothing was run */
  buf_t out, err;
} run_result;

/* Runs path with argv/envp, stdin inherited, stdout/stderr teed to ours and captured. */
int run_captured(const char *path, char *const argv[], char *const envp[], run_result *r);

#endif
