#ifndef VRIFT_BUF_H
#define VRIFT_BUF_H
#include <stddef.h>
#include <stdint.h>

/* Growable byte buffer. An allocation failure sets `oom` and turns later writes into
 * no-ops, so callers check once at the end instead of after every append. */
typedef struct {
  uint8_t *p;
  size_t len, cap;
  int oom;
} buf_t;

int buf_reserve(buf_t *b, size_t extra);
void buf_put(buf_t *b, const void *src, size_t n);
void buf_byte(buf_t *b, uint8_t c);
void buf_free(buf_t *b);

#endif
