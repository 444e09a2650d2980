#ifndef VRIFT_DAEMON_H
#define VRIFT_DAEMON_H
#include <stdint.h>

#include "zmtp.h"

typedef struct {
  char home[4000]; /* leaves room for the suffixes below */
  char run_dir[4096];
  char sock[4096];
  char lock[4096];
} vrift_paths;

int paths_init(vrift_paths *p);

/* Connected and handshaken to the daemon, starting it if nobody answers; -1 means
 * fail open, -2 fail open because no daemon can start (now, or recorded earlier). */
int daemon_connect(const vrift_paths *p, zmtp_t *z);

/* A daemon of another build (it answered EVERSION) is asked to leave; the next call
 * starts ours. */
void replace_daemon(const vrift_paths *p);

#endif
