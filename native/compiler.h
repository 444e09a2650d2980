#ifndef VRIFT_COMPILER_H
#define VRIFT_COMPILER_H

/* The real compiler's process: the environment it runs in, and the exec of it exactly as
 * the build asked, which is where every fail-open path ends. */

/* Under `vrift run`: takes the exec interceptor out of our environment and puts the
 * masquerade directory back first on PATH, before anything reads either. */
void leave_interceptor(void);

/* environ plus the daemon's entries (`add`, NULL-terminated), a daemon entry replacing
 * ours of the same name. NULL when out of memory. */
char **merge_env(char **add);

/* execs `exe` with the build's argv; "" when no compiler was found. Exits 127 or 126 with
 * the one message of our own when it cannot be run. */
void run_original(const char *exe, char **argv) __attribute__((noreturn));

#endif
