import fs from 'node:fs';
import path from 'node:path';
import { run } from './exec.js';
import { createTools, type DaemonInfo, type ToolOptions } from './tools.js';

// The daemon with many entries: N distinct small translation units (each includes a libc
// header, so every manifest lists real files) compiled through vrift with make -jJ, then
// all removed and rebuilt from the cache. Reports the daemon's VmRSS, its lookup-time
// percentiles and the store's size once the hit pass has gone through every entry.

export interface EntriesResult {
  units: number;
  coldSeconds: number;
  warmSeconds: number;
  hits: number | null;
  misses: number | null;
  daemon: DaemonInfo | null;
  error?: string;
}

function writeProject(dir: string, n: number) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const objs: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `u${i}`;
    fs.writeFileSync(path.join(dir, `${name}.c`), `#include <string.h>\nint ${name}(const char *s) { return (int)strlen(s) * ${i} + ${i % 7}; }\n`);
    objs.push(`${name}.o`);
  }
  // Old mtimes: nothing here is "too new" to be cached.
  const old = new Date(Date.now() - 3600_000);
  for (const f of fs.readdirSync(dir)) fs.utimesSync(path.join(dir, f), old, old);
  fs.writeFileSync(path.join(dir, 'objs.mk'), `OBJS = ${objs.join(' \\\n  ')}\n`);
  fs.writeFileSync(path.join(dir, 'Makefile'), 'include objs.mk\nall: $(OBJS)\n%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n');
}

export async function entriesScenario(o: { units: number; jobs: number; toolOptions: ToolOptions; workDir: string; logFile: string }): Promise<EntriesResult> {
  const dir = path.join(o.workDir, 'entries');
  writeProject(dir, o.units);
  const [t] = await createTools(['vrift'], { ...o.toolOptions, cacheRoot: path.join(o.toolOptions.cacheRoot, 'entries') });
  const res: EntriesResult = { units: o.units, coldSeconds: NaN, warmSeconds: NaN, hits: null, misses: null, daemon: null };
  if (t.unavailable) return { ...res, error: t.unavailable };
  const make = () => run(['make', `-j${o.jobs}`, `CC=${t.launcher[0]} gcc`], { cwd: dir, env: t.env, logFile: o.logFile });
  const clean = () => {
    for (const f of fs.readdirSync(dir)) if (f.endsWith('.o')) fs.rmSync(path.join(dir, f));
  };
  try {
    await t.reset();
    res.coldSeconds = (await make()).seconds;
    clean();
    await t.beginBuild();
    res.warmSeconds = (await make()).seconds;
    const s = await t.stats();
    res.hits = s?.hits ?? null;
    res.misses = s?.misses ?? null;
    res.daemon = (await t.daemon?.()) ?? null;
  } catch (e) {
    res.error = (e as Error).message.split('\n')[0];
  } finally {
    await t.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return res;
}
