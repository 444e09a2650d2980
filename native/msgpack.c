#include "msgpack.h"

#include <string.h>

static void be(buf_t *b, uint8_t tag, uint64_t v, int bytes) {
  uint8_t t[9];
  t[0] = tag;
  for (int i = 0; i < bytes; i++) t[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
  buf_put(b, t, (size_t)bytes + 1);
}

static void head(buf_t *b, uint32_t n, uint8_t fix, uint32_t fixmax, uint8_t t16, uint8_t t32) {
  if (n <= fixmax) buf_byte(b, (uint8_t)(fix | n));
  else if (n <= 0xffff) be(b, t16, n, 2);
  else be(b, t32, n, 4);
}

void mp_map(buf_t *b, uint32_t n) { head(b, n, 0x80, 15, 0xde, 0xdf); }
void mp_array(buf_t *b, uint32_t n) { head(b, n, 0x90, 15, 0xdc, 0xdd); }

void mp_str(buf_t *b, const char *s, size_t n) {
  if (n <= 31) buf_byte(b, (uint8_t)(0xa0 | n));
  else if (n <= 0xff) be(b, 0xd9, n, 1);
  else if (n <= 0xffff) be(b, 0xda, n, 2);
  else be(b, 0xdb, n, 4);
  buf_put(b, s, n);
}

void mp_cstr(buf_t *b, const char *s) { mp_str(b, s, strlen(s)); }

void mp_bin_head(buf_t *b, size_t n) {
  if (n <= 0xff) be(b, 0xc4, n, 1);
  else if (n <= 0xffff) be(b, 0xc5, n, 2);
  else be(b, 0xc6, n, 4);
}

void mp_bin(buf_t *b, const void *p, size_t n) {
  mp_bin_head(b, n);
  buf_put(b, p, n);
}

void mp_int(buf_t *b, int64_t v) {
  if (v >= 0) {
    if (v <= 127) buf_byte(b, (uint8_t)v);
    else if (v <= 0xff) be(b, 0xcc, (uint64_t)v, 1);
    else if (v <= 0xffff) be(b, 0xcd, (uint64_t)v, 2);
    else if (v <= 0xffffffffLL) be(b, 0xce, (uint64_t)v, 4);
    else be(b, 0xcf, (uint64_t)v, 8);
  } else {
    if (v >= -32) buf_byte(b, (uint8_t)(int8_t)v);
    else if (v >= INT8_MIN) be(b, 0xd0, (uint64_t)v & 0xff, 1);
    else if (v >= INT16_MIN) be(b, 0xd1, (uint64_t)v & 0xffff, 2);
    else if (v >= INT32_MIN) be(b, 0xd2, (uint64_t)v & 0xffffffff, 4);
    else be(b, 0xd3, (uint64_t)v, 8);
  }
}

void mp_bool(buf_t *b, int v) { buf_byte(b, v ? 0xc3 : 0xc2); }

/* Reading. */

static int take(mp_reader *r, size_t n, const uint8_t **out) {
  if ((size_t)(r->end - r->p) < n) { r->p = r->end; return -1; }
  *out = r->p;
  r->p += n;
  return 0;
}

static int rd_be(mp_reader *r, int bytes, uint64_t *v) {
  const uint8_t *q;
  if (take(r, (size_t)bytes, &q)) return -1;
  uint64_t x = 0;
  for (int i = 0; i < bytes; i++) x = (x << 8) | q[i];
  *v = x;
  return 0;
}

static int rd_count(mp_reader *r, uint8_t fixmask, uint8_t fixtag, uint8_t t16, uint8_t t32, uint32_t *n) {
  if (r->p >= r->end) return -1;
  uint8_t c = *r->p;
  uint64_t v;
  if ((c & fixmask) == fixtag) { r->p++; *n = c & (uint8_t)~fixmask; return 0; }
  if (c == t16) { r->p++; if (rd_be(r, 2, &v)) return -1; *n = (uint32_t)v; return 0; }
  if (c == t32) { r->p++; if (rd_be(r, 4, &v)) return -1; *n = (uint32_t)v; return 0; }
  return -1;
}

int mp_read_map(mp_reader *r, uint32_t *n) { return rd_count(r, 0xf0, 0x80, 0xde, 0xdf, n); }
int mp_read_array(mp_reader *r, uint32_t *n) { return rd_count(r, 0xf0, 0x90, 0xdc, 0xdd, n); }

static int rd_sized(mp_reader *r, int allow_str, int allow_bin, const uint8_t **p, uint32_t *n) {
  if (r->p >= r->end) return -1;
  uint8_t c = *r->p;
  uint64_t len;
  if (allow_str && (c & 0xe0) == 0xa0) { r->p++; len = c & 0x1f; }
  else if ((allow_str && c == 0xd9) || (allow_bin && c == 0xc4)) { r->p++; if (rd_be(r, 1, &len)) return -1; }
  else if ((allow_str && c == 0xda) || (allow_bin && c == 0xc5)) { r->p++; if (rd_be(r, 2, &len)) return -1; }
  else if ((allow_str && c == 0xdb) || (allow_bin && c == 0xc6)) { r->p++; if (rd_be(r, 4, &len)) return -1; }
  else return -1;
  if (take(r, (size_t)len, p)) return -1;
  *n = (uint32_t)len;
  return 0;
}

int mp_read_str(mp_reader *r, const char **s, uint32_t *n) {
  return rd_sized(r, 1, 0, (const uint8_t **)s, n);
}

int mp_read_bytes(mp_reader *r, const uint8_t **p, uint32_t *n) { return rd_sized(r, 1, 1, p, n); }

int mp_read_int(mp_reader *r, int64_t *v) {
  if (r->p >= r->end) return -1;
  uint8_t c = *r->p;
  uint64_t x;
  if (c <= 0x7f) { r->p++; *v = c; return 0; }
  if (c >= 0xe0) { r->p++; *v = (int8_t)c; return 0; }
  int bytes, sign;
  switch (c) {
    case 0xcc: bytes = 1; sign = 0; break;
    case 0xcd: bytes = 2; sign = 0; break;
    case 0xce: bytes = 4; sign = 0; break;
    case 0xcf: bytes = 8; sign = 0; break;
    case 0xd0: bytes = 1; sign = 1; break;
    case 0xd1: bytes = 2; sign = 1; break;
    case 0xd2: bytes = 4; sign = 1; break;
    case 0xd3: bytes = 8; sign = 1; break;
    default: return -1;
  }
  r->p++;
  if (rd_be(r, bytes, &x)) return -1;
  if (!sign) {
    if (x > INT64_MAX) return -1;
    *v = (int64_t)x;
  } else if (bytes == 1) *v = (int8_t)x;
  else if (bytes == 2) *v = (int16_t)x;
  else if (bytes == 4) *v = (int32_t)x;
  else *v = (int64_t)x;
  return 0;
}

int mp_read_bool(mp_reader *r, int *v) {
  if (r->p >= r->end || (*r->p != 0xc2 && *r->p != 0xc3)) return -1;
  *v = *r->p++ == 0xc3;
  return 0;
}

int mp_is_nil(const mp_reader *r) { return r->p < r->end && *r->p == 0xc0; }

/* Depth-limited so a hostile or corrupt reply cannot exhaust the stack. */
static int skip(mp_reader *r, int depth) {
  if (depth > 64 || r->p >= r->end) return -1;
  uint8_t c = *r->p;
  const uint8_t *q;
  uint64_t n;
  uint32_t cnt;
  if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) { r->p++; return 0; }
  if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb || c == 0xc4 || c == 0xc5 || c == 0xc6)
    return rd_sized(r, 1, 1, &q, &cnt);
  if ((c & 0xf0) == 0x80 || c == 0xde || c == 0xdf || (c & 0xf0) == 0x90 || c == 0xdc || c == 0xdd) {
    int is_map = (c & 0xf0) == 0x80 || c == 0xde || c == 0xdf;
    if ((is_map ? mp_read_map(r, &cnt) : mp_read_array(r, &cnt))) return -1;
    uint64_t items = is_map ? (uint64_t)cnt * 2 : cnt;
    for (uint64_t i = 0; i < items; i++)
      if (skip(r, depth + 1)) return -1;
    return 0;
  }
  r->p++;
  switch (c) {
    case 0xcc: case 0xd0: return take(r, 1, &q);
    case 0xcd: case 0xd1: return take(r, 2, &q);
    case 0xce: case 0xd2: case 0xca: return take(r, 4, &q);
    case 0xcf: case 0xd3: case 0xcb: return take(r, 8, &q);
    case 0xd4: return take(r, 2, &q); /* fixext: type byte + data */
    case 0xd5: return take(r, 3, &q);
    case 0xd6: return take(r, 5, &q);
    case 0xd7: return take(r, 9, &q);
    case 0xd8: return take(r, 17, &q);
    case 0xc7: if (rd_be(r, 1, &n)) return -1; return take(r, (size_t)n + 1, &q);
    case 0xc8: if (rd_be(r, 2, &n)) return -1; return take(r, (size_t)n + 1, &q);
    case 0xc9: if (rd_be(r, 4, &n)) return -1; return take(r, (size_t)n + 1, &q);
    default: return -1; /* 0xc1 is never used */
  }
}

int mp_skip(mp_reader *r) { return skip(r, 0); }
