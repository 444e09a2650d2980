import fs from 'node:fs';
import net from 'node:net';
import readline from 'node:readline';
import type { LazyEntry } from '../../ipc/lazy-map.js';
import type { LazyFiles } from './lazy.js';

// The overlay server's socket (`run/mounts/<hash>.sock`): the daemon registers a hit's output
// as lazy here. One JSON line per request, one per answer, in order:
//   {"op":"register","path":"sub/x.o","entry":{digest,size,mode,mtime,store}} → {"ok":true} | {"error":"..."}
//   {"op":"unregister","path":"sub/x.o"} → {"ok":true} (its blob went away: the daemon writes it)
// Anything but ok means the daemon writes the output itself, as without the overlay.

export interface LazyRequest {
  op: 'register' | 'unregister';
  path: string;
  entry?: LazyEntry;
}

export function serveLazySocket(file: string, lazy: LazyFiles, say: (msg: string) => void): net.Server {
  fs.rmSync(file, { force: true });
  const server = net.createServer((sock) => {
    sock.on('error', () => {});
    const lines = readline.createInterface({ input: sock, crlfDelay: Infinity });
    // Answered in order: each request waits for the one before it.
    let chain = Promise.resolve();
    lines.on('line', (line) => {
      chain = chain.then(async () => {
        let reply: Record<string, unknown>;
        try {
          const req = JSON.parse(line) as LazyRequest;
          if (typeof req.path !== 'string') throw new Error('no path');
          if (req.op === 'register') await lazy.register(req.path, req.entry as LazyEntry);
          else if (req.op === 'unregister') await lazy.settled(req.path).then(() => lazy.drop(req.path));
          else throw new Error(`unknown request ${JSON.stringify(req.op)}`);
          reply = { ok: true };
        } catch (e) {
          reply = { error: (e as Error).message };
          say(`register refused: ${(e as Error).message}`);
        }
        if (!sock.destroyed) sock.write(`${JSON.stringify(reply)}\n`);
      });
    });
  });
  // In run/mounts (0700): only this user reaches it.
  server.listen(file);
  return server;
}
