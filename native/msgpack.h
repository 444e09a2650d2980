#ifndef VRIFT_MSGPACK_H
#define VRIFT_MSGPACK_H
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* The subset of msgpack that ipc/codec.ts produces and accepts: maps with str keys,
 * arrays, str, bin, ints, nil, bools. Floats and ext are skipped, never interpreted. */

void mp_map(buf_t *b, uint32_t n);
void mp_array(buf_t *b, uint32_t n);
void mp_str(buf_t *b, const char *s, size_t n);
void mp_cstr(buf_t *b, const char *s);
void mp_bin(buf_t *b, const void *p, size_t n);
/* The header of a bin of n bytes: the caller appends them (read straight into the buffer). */
void mp_bin_head(buf_t *b, size_t n);
void mp_int(buf_t *b, int64_t v);
void mp_bool(buf_t *b, int v);

/* A reader never reads past `end`; every call returns 0 on success and -1 when the
 * next value is truncated or of another type, leaving the reader unusable. */
typedef struct {
  const uint8_t *p, *end;
} mp_reader;

int mp_read_map(mp_reader *r, uint32_t *n);
int mp_read_array(mp_reader *r, uint32_t *n);
int mp_read_str(mp_reader *r, const char **s, uint32_t *n);
/* bin or str: the daemon's field reader accepts both for byte fields. */
int mp_read_bytes(mp_reader *r, const uint8_t **p, uint32_t *n);
int mp_read_int(mp_reader *r, int64_t *v);
int mp_read_bool(mp_reader *r, int *v);
int mp_is_nil(const mp_reader *r);
int mp_skip(mp_reader *r);

#endif
