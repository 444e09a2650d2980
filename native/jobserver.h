#ifndef VRIFT_JOBSERVER_H
#define VRIFT_JOBSERVER_H

/* A client of GNU make's jobserver (MAKEFLAGS --jobserver-auth=fifo:PATH or R,W): the
 * process owns one job implicitly; every further one needs a token read from the
 * jobserver, written back when that job is done. */
#define JS_MAX_HELD 256

typedef struct {
  int rfd;    /* our own non-blocking descriptor for reading tokens, -1 without a jobserver */
  int wfd;    /* where tokens go back */
  int own_w;  /* wfd is ours to close */
  int held;
  unsigned char tok[JS_MAX_HELD];
} jobserver;

/* 0 when MAKEFLAGS names a usable jobserver; -1 otherwise (js->rfd is -1 then). A pipe
 * make closed for this command (make < 4.4 keeps it only for recipes marked `+`) or a
 * descriptor that is not that pipe is no jobserver. */
int js_open(jobserver *js, const char *makeflags);
/* 1 when a token was taken, 0 when none is there now. Never blocks. */
int js_take(jobserver *js);
/* Writes one held token back. */
void js_give(jobserver *js);
/* Writes every held token back and closes what js_open opened. */
void js_close(jobserver *js);

#endif
