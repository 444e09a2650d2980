#include "buf.h"

#include <stdlib.h>
#include <string.h>

int buf_reserve(buf_t *b, size_t extra) {
  if (b->oom) return -1;
  if (b->cap - b->len >= extra) return 0;
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len < extra) {
    if (cap > SIZE_MAX / 2) { b->oom = 1; return -1; }
    cap *= 2;
  }
  uint8_t *p = realloc(b->p, cap);
  if (!p) { b->oom = 1; return -1; }
  b->p = p;
  b->cap = cap;
  return 0;
}

void buf_put(buf_t *b, const void *src, size_t n) {
  if (n == 0 || buf_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, src, n);
  b->len += n;
}

void buf_byte(buf_t *b, uint8_t c) { buf_put(b, &c, 1); }

void buf_free(buf_t *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
  b->oom = 0;
}
