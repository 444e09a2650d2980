import fs from 'node:fs';
import path from 'node:path';
import type { InstancePaths } from '../ipc/paths.js';
import { NATIVE_SHIM, PACKAGE_ROOT } from './daemon-control.js';

// rustc too: the shim handles it by name (`vrift-shim --help` lists it), for builds that call it directly.
export const MASQUERADE_NAMES = ['gcc', 'cc', 'g++', 'c++', 'clang', 'clang++', 'rustc'];

// A directory of compiler names that all lead to the shim; put it first on PATH. The
// native shim is linked; without it, small scripts run the TypeScript shim.
export function ensureShimsDir(paths: InstancePaths): string {
  const dir = paths.shimsDir;
  fs.mkdirSync(dir, { recursive: true });
  const native = fs.existsSync(NATIVE_SHIM);
  for (const name of MASQUERADE_NAMES) {
    const target = path.join(dir, name);
    fs.rmSync(target, { force: true });
    if (native) fs.symlinkSync(NATIVE_SHIM, target);
    else {
      const js = path.join(PACKAGE_ROOT, 'dist', 'shim', 'shim.js');
      fs.writeFileSync(target, `#!/bin/sh\nVRIFT_SHIM_AS=${name} exec "${process.execPath}" "${js}" "$@"\n`, { mode: 0o755 });
    }
  }
  return dir;
}
