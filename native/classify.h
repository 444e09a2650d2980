#ifndef VRIFT_CLASSIFY_H
#define VRIFT_CLASSIFY_H

/* 1 when `path` (as exec would open it) runs a compiler vrift caches: gcc, g++, cc, c++,
 * clang, clang++ or rustc, with a version suffix and a target prefix
 * (x86_64-linux-gnu-gcc-12). Decided by the file the symlinks lead to, not by the name
 * used: /usr/bin/cc -> /etc/alternatives/cc -> /usr/bin/gcc -> gcc-12 ->
 * x86_64-linux-gnu-gcc-12. A rustup proxy (rustc -> rustup) is known by its link's name,
 * which is what rustup dispatches on.
 * Remembered per path in this process while the file's dev/ino/mtime stay the same.
 * Async-signal-safe (no malloc, no lock waited for): it runs in vfork children. */
int is_compiler_exe(const char *path);

/* The name rule alone, on a file name without directory. */
int is_compiler_name(const char *name);

#endif
