/* vrift_watch.node: the daemon's inotify instance, read synchronously.
 *
 * The daemon trusts a memoised input hash without a stat while no event for the file has
 * been seen. That is only sound if, when a lookup starts, every event queued before the
 * request was sent has been read. libuv's fs.watch reads its inotify fd whenever the loop
 * gets round to it and drops IN_Q_OVERFLOW, so the daemon keeps its own fd and drains it
 * at the top of every request: a write finished before the compiler started was queued
 * (inotify queues inside the write syscall) before the request existed.
 *
 * N-API only (stable ABI): built with the headers node installs, no node-gyp.
 *   open()            -> fd                 (throws on failure)
 *   add(fd, path)     -> wd, or -errno
 *   rm(fd, wd)        -> 0, or -errno
 *   drain(fd)         -> [wd, mask, name|null, ...] of every queued event; -errno on error
 */
#include <errno.h>
#include <node_api.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | \
              IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

static napi_value num(napi_env env, double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

static int arg_int(napi_env env, napi_value v, int *out) {
  int32_t i;
  if (napi_get_value_int32(env, v, &i) != napi_ok) return -1;
  *out = i;
  return 0;
}

static napi_value w_open(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  return num(env, fd);
}

static napi_value w_add(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  char path[4096];
  size_t len = 0;
  if (argc < 2 || arg_int(env, argv[0], &fd) ||
      napi_get_value_string_utf8(env, argv[1], path, sizeof path, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "add(fd, path)");
    return NULL;
  }
  if (len >= sizeof path - 1) return num(env, -ENAMETOOLONG);
  int wd = inotify_add_watch(fd, path, MASK);
  return num(env, wd < 0 ? -errno : wd);
}

static napi_value w_rm(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd, wd;
  if (argc < 2 || arg_int(env, argv[0], &fd) || arg_int(env, argv[1], &wd)) {
    napi_throw_type_error(env, NULL, "rm(fd, wd)");
    return NULL;
  }
  return num(env, inotify_rm_watch(fd, wd) < 0 ? -errno : 0);
}

static napi_value w_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int fd;
  if (argc < 1 || arg_int(env, argv[0], &fd)) {
    napi_throw_type_error(env, NULL, "drain(fd)");
    return NULL;
  }
  napi_value out;
  napi_create_array(env, &out);
  uint32_t n = 0;
  char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
  for (;;) {
    ssize_t got = read(fd, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return num(env, -errno);
    }
    if (got == 0) break;
    for (char *p = buf; p < buf + got;) {
      const struct inotify_event *e = (const struct inotify_event *)p;
      napi_value name;
      if (e->len > 0) napi_create_string_utf8(env, e->name, strnlen(e->name, e->len), &name);
      else napi_get_null(env, &name);
      napi_set_element(env, out, n++, num(env, e->wd));
      napi_set_element(env, out, n++, num(env, e->mask));
      napi_set_element(env, out, n++, name);
      p += sizeof *e + e->len;
    }
  }
  return out;
}

/* The tick of the coarse clock file timestamps come from (one jiffy): how far a file's
 * ctime can lag the moment of the write it records. */
static napi_value w_coarse_ns(napi_env env, napi_callback_info info) {
  (void)info;
  struct timespec ts;
  if (clock_getres(CLOCK_REALTIME_COARSE, &ts) != 0) return num(env, -errno);
  return num(env, (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    {"open", NULL, w_open, NULL, NULL, NULL, napi_default, NULL},
    {"add", NULL, w_add, NULL, NULL, NULL, napi_default, NULL},
    {"rm", NULL, w_rm, NULL, NULL, NULL, napi_default, NULL},
    {"drain", NULL, w_drain, NULL, NULL, NULL, napi_default, NULL},
    {"coarseClockNs", NULL, w_coarse_ns, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_value mask;
  napi_create_object(env, &mask);
  struct { const char *k; uint32_t v; } bits[] = {
    {"MODIFY", IN_MODIFY}, {"ATTRIB", IN_ATTRIB}, {"CLOSE_WRITE", IN_CLOSE_WRITE}, {"CREATE", IN_CREATE},
    {"DELETE", IN_DELETE}, {"MOVED_FROM", IN_MOVED_FROM}, {"MOVED_TO", IN_MOVED_TO},
    {"DELETE_SELF", IN_DELETE_SELF}, {"MOVE_SELF", IN_MOVE_SELF}, {"IGNORED", IN_IGNORED},
    {"Q_OVERFLOW", IN_Q_OVERFLOW}, {"ISDIR", IN_ISDIR}, {"UNMOUNT", IN_UNMOUNT},
  };
  for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) napi_set_named_property(env, mask, bits[i].k, num(env, bits[i].v));
  napi_set_named_property(env, exports, "IN", mask);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
