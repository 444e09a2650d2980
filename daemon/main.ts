#!/usr/bin/env -S node --max-semi-space-size=4
// vriftd. Without a mode: the daemon (run.ts). `vriftd serve …`: the team cache server, which
// `vrift serve` runs. `vriftd store …`: the store work of `vrift clean` and `vrift verify`
// (store-tool.ts). The CLI reaches the daemon's code only by running this program or over
// ipc/, never by importing it; each mode loads only its own modules.
const mode = process.argv[2];
if (mode === 'serve') await (await import('./serve/command.js')).serveCommand(process.argv.slice(2));
else if (mode === 'store') await (await import('./store-tool.js')).storeTool(process.argv.slice(3));
else await import('./run.js');
