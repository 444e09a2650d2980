import fs from 'node:fs';
import path from 'node:path';

function realpathOr(p: string): string | undefined {
  try {
    return fs.realpathSync(p);
  } catch {
    return undefined;
  }
}

// Find the compiler the build named. A name is looked up on PATH, skipping anything that is
// vrift itself (the native shim, the shims directory), so a masquerading shim never runs itself.
export function resolveCompiler(name: string, cwd: string, envPath: string, skip: string[]): string | undefined {
  if (name.includes('/')) return path.resolve(cwd, name);
  const skipReal = new Set(skip.map(realpathOr).filter((x): x is string => !!x));
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const cand = path.resolve(cwd, dir, name);
    try {
      fs.accessSync(cand, fs.constants.X_OK);
      if (!fs.statSync(cand).isFile()) continue;
    } catch {
      continue;
    }
    const real = realpathOr(cand);
    const realDir = realpathOr(path.resolve(cwd, dir));
    if ((real && skipReal.has(real)) || (realDir && skipReal.has(realDir))) continue;
    return cand;
  }
  return undefined;
}
