import crypto from 'node:crypto';
import fs from 'node:fs';

// A C source whose object carries `bytes` of random printable data in .rodata (about 6.5
// bits of entropy per byte, so zstd saves little). gcc compiles 16 MB of it in under a
// second; every byte the object holds comes from the source, so it is cacheable (an
// `.incbin` of a side file is not: the compiler's dependency list never names that file).
export function writeBigSource(file: string, bytes: number, seed?: Buffer): void {
  const alpha = Buffer.from([...Array(95).keys()].map((i) => 32 + i).filter((c) => c !== 0x22 && c !== 0x5c && c !== 0x3f));
  const line = 4096;
  const r = Buffer.alloc(line);
  const rnd = seed ? crypto.createHash('shake256', { outputLength: bytes }).update(seed).digest() : undefined;
  const fd = fs.openSync(file, 'w');
  try {
    fs.writeSync(fd, '__attribute__((used)) const char big_blob[] =\n');
    for (let i = 0; i < bytes; i += line) {
      const n = Math.min(line, bytes - i);
      if (rnd) rnd.copy(r, 0, i, i + n);
      else crypto.randomFillSync(r);
      for (let j = 0; j < n; j++) r[j] = alpha[r[j] % alpha.length];
      fs.writeSync(fd, `"${r.subarray(0, n).toString('latin1')}"\n`);
    }
    fs.writeSync(fd, ';\n');
  } finally {
    fs.closeSync(fd);
  }
}
