import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

// Outputs appear whole or not at all: a parallel step (ar, a linker) never reads half an object.
export function writeFileAtomic(file: string, data: Buffer, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.vrift-${crypto.randomBytes(4).toString('hex')}`);
  try {
    fs.writeFileSync(tmp, data, { mode, flag: 'wx' });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
