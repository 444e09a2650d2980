#include "outputs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Writes `d` into the daemon's spare file `spare` and renames it onto `path`: no inode is
 * created while the build waits (daemon/frontends/materialize.ts OutputSpares). The spare
 * must be what the daemon made: a regular, empty, singly linked file of our user (opened
 * without following a symlink). Returns -1 when it cannot be used; the spare is removed
 * then and the caller creates the file itself. */
static int write_via_spare(const char *path, const char *spare, const uint8_t *d, uint32_t dl, mode_t mode) {
  int fd = open(spare, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    unlink(spare); /* a symlink, say: never followed, never left for someone else */
    return -1;
  }
  struct stat st;
  int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && st.st_nlink == 1 &&
           st.st_uid == geteuid() && fchmod(fd, mode) == 0 && write_all(fd, d, dl) == 0;
  if (close(fd) != 0) ok = 0;
  if (ok && (unlink(path) == 0 || errno == ENOENT) && rename(spare, path) == 0) return 0;
  unlink(spare);
  return -1;
}

int write_outputs(const reply_t *rep) {
  mp_reader r = rep->files;
  int um = -1; /* read when a spare first needs it: umask has no read-only call */
  for (uint32_t i = 0; i < rep->filesc; i++) {
    uint32_t n, pl, dl, sl = 0;
    const char *p, *sp = NULL;
    const uint8_t *d;
    if (mp_read_array(&r, &n) || mp_read_str(&r, &p, &pl) || mp_read_bytes(&r, &d, &dl)) return -1;
    if (n == 3 && mp_read_str(&r, &sp, &sl)) return -1; /* parse_reply checked the shape */
    char path[4096], spare[4096];
    if (pl == 0 || pl >= sizeof path || sl >= sizeof spare) return -1;
    memcpy(path, p, pl);
    path[pl] = 0;
    if (sp && sl > 0) {
      memcpy(spare, sp, sl);
      spare[sl] = 0;
      if (um < 0) {
        um = (int)umask(0);
        umask((mode_t)um);
      }
      if (write_via_spare(path, spare, d, dl, 0666 & ~(mode_t)um) == 0) continue;
    }
    if (unlink(path) != 0 && errno != ENOENT) return -1;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    int bad = write_all(fd, d, dl) != 0;
    if (close(fd) != 0) bad = 1;
    if (bad) {
      unlink(path);
      return -1;
    }
  }
  return 0;
}
