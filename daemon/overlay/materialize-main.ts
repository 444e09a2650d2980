#!/usr/bin/env node
import { LazyFiles } from './lazy.js';

// `node overlay/materialize-main.js DIR MAPFILE`: writes into DIR (a plain directory again, its
// overlay gone) every lazy file of MAPFILE whose bytes can be had, leaving out the others; run
// by `vrift unmount` when the overlay's server was killed before it could (the CLI reaches the
// daemon's code only by running it). Prints {"written","lost"}; exit 1 on failure.
const [dir, file] = process.argv.slice(2);
if (!dir || !file) {
  process.stderr.write('usage: materialize-main.js DIR MAPFILE\n');
  process.exit(2);
}
try {
  process.stdout.write(`${JSON.stringify(await LazyFiles.load(dir, file).materializeAll())}\n`);
} catch (e) {
  process.stderr.write(`materialize ${dir}: ${(e as Error).message}\n`);
  process.exit(1);
}
