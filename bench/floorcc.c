// The "perfect cache" used to measure the floor of a warm build by hand (README, Performance):
// as a compiler launcher, FLOOR_MODE=record runs the compiler and saves its -o/-MF outputs
// under FLOOR_DIR; FLOOR_MODE=replay copies them back without running anything (links and
// calls without -o run for real). Build: gcc -O2 -static -o floorcc bench/floorcc.c
// FLOOR_SPARES=DIR: replayed outputs go into empty files DIR/s0..s3999 made ahead, renamed
// into place (how the gain of the daemon's spare files was measured before they existed).
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <sys/stat.h>
static char buf[1 << 22];
static int spare_no;
static int copy(const char *from, const char *to) {
  int in = open(from, O_RDONLY); if (in < 0) return -1;
  unlink(to);
  const char *sp = getenv("FLOOR_SPARES");
  int out = -1; char spare[4096];
  if (sp) {
    for (int tries = 0; tries < 4000 && out < 0; tries++) {
      snprintf(spare, sizeof spare, "%s/s%d", sp, (getpid() * 7 + spare_no++ * 13 + tries) % 4000);
      char claim[4200]; snprintf(claim, sizeof claim, "%s.%d", spare, getpid());
      if (rename(spare, claim) == 0) { out = open(claim, O_WRONLY); if (out >= 0) { rename(claim, to); } }
    }
  }
  if (out < 0) out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0666);
  if (out < 0) { close(in); return -1; }
  ssize_t n; while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
  close(in); close(out); return 0;
}
static void keyed(char *dst, const char *dir, const char *cwd, const char *p) {
  char full[8192]; if (p[0] == '/') snprintf(full, sizeof full, "%s", p); else snprintf(full, sizeof full, "%s/%s", cwd, p);
  for (char *c = full; *c; c++) if (*c == '/') *c = '_';
  snprintf(dst, 8192, "%s/%s", dir, full);
}
int main(int argc, char **argv) {
  const char *mode = getenv("FLOOR_MODE"), *dir = getenv("FLOOR_DIR");
  char cwd[4096]; getcwd(cwd, sizeof cwd);
  const char *outs[4]; int no = 0;
  for (int i = 1; i < argc - 1; i++) if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "-MF")) outs[no++] = argv[i + 1];
  int isc = 0; for (int i = 1; i < argc; i++) if (!strcmp(argv[i], "-c")) isc = 1;
  if (mode && !strcmp(mode, "replay") && isc && no > 0) {
    char k[8192]; int ok = 1;
    for (int i = 0; i < no; i++) { keyed(k, dir, cwd, outs[i]); if (copy(k, outs[i])) ok = 0; }
    if (ok) return 0;
  }
  pid_t p = fork();
  if (p == 0) { execvp(argv[1], argv + 1); _exit(127); }
  int st; waitpid(p, &st, 0);
  if (mode && !strcmp(mode, "record") && isc && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    char k[8192]; mkdir(dir, 0755);
    for (int i = 0; i < no; i++) { keyed(k, dir, cwd, outs[i]); copy(outs[i], k); }
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
