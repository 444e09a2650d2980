#!/usr/bin/env node
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { envFlag } from '../ipc/env-flag.js';
import { IpcClient } from '../ipc/client.js';
import type { CompileReply, ErrorReply } from '../ipc/messages/index.js';
import { instancePaths } from '../ipc/paths.js';
import type { ShimFallback } from '../ipc/reasons.js';
import { BUILD_ID } from '../ipc/version.js';
import { ensureDaemon, NATIVE_SHIM } from './daemon-control.js';
import { resolveCompiler } from './resolve.js';

// The TypeScript shim: the same behaviour as native/ for platforms without the native
// build. `vrift-shim-js gcc -c a.c`, or as a masquerade script with VRIFT_SHIM_AS=gcc.
// It prints nothing of its own: every failure falls back to running the compiler.

const MAX_CAPTURE = 64 * 1024 * 1024;

function usage(): never {
  process.stdout.write('Usage: vrift-shim-js <compiler> [args...]\n       (or as a masquerade script with VRIFT_SHIM_AS=<compiler>)\n');
  process.exit(0);
}

function runPlain(exe: string, argv: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(exe, argv.slice(1), { argv0: argv[0], stdio: 'inherit' });
    child.on('error', (err) => {
      process.stderr.write(`${argv[0]}: ${err.message}\n`);
      resolve(127);
    });
    child.on('close', (code, sig) => resolve(code ?? 128 + (sig ? 15 : 0)));
  });
}

function runCaptured(exe: string, argv: string[], extraEnv: string[]): Promise<{ code: number; out: Buffer; err: Buffer; nocache: boolean }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    for (const kv of extraEnv) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
    const child = spawn(exe, argv.slice(1), { argv0: argv[0], stdio: ['inherit', 'pipe', 'pipe'], env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    let nocache = false;
    const tee = (sink: NodeJS.WriteStream, acc: Buffer[]) => (chunk: Buffer) => {
      sink.write(chunk);
      size += chunk.length;
      if (size > MAX_CAPTURE) nocache = true;
      else acc.push(chunk);
    };
    child.stdout.on('data', tee(process.stdout, out));
    child.stderr.on('data', tee(process.stderr, err));
    child.on('error', (e) => {
      process.stderr.write(`${argv[0]}: ${e.message}\n`);
      resolve({ code: 127, out: Buffer.alloc(0), err: Buffer.alloc(0), nocache: true });
    });
    child.on('close', (code, sig) =>
      resolve({ code: code ?? 128 + (sig ? 15 : 0), out: Buffer.concat(out), err: Buffer.concat(err), nocache: nocache || code === null }),
    );
  });
}

// As the native shim does: one line in log/fallback.ndjson per call that went around the cache.
function noteFallback(logFile: string, reason: ShimFallback) {
  try {
    const dir = path.dirname(logFile);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.appendFileSync(path.join(dir, 'fallback.ndjson'), JSON.stringify({ ts: Date.now(), pid: process.pid, reason }) + '\n', { mode: 0o600 });
  } catch {
    // diagnostics must never break the build
  }
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const as = process.env.VRIFT_SHIM_AS;
  if (!as && (args.length === 0 || args[0] === '--help')) usage();
  if (!as && args[0] === '--version') {
    process.stdout.write(`vrift-shim-js ${BUILD_ID}\n`);
    return 0;
  }
  const argv = as ? [as, ...args] : args;
  const paths = instancePaths();
  const cwd = process.cwd();
  const exe = resolveCompiler(argv[0], cwd, process.env.PATH ?? '', [NATIVE_SHIM, paths.shimsDir]);
  if (!exe) {
    process.stderr.write(`vrift-shim-js: the real ${path.basename(argv[0])} was not found on PATH (vrift's own shims are skipped)\n`);
    return 127;
  }
  if (envFlag(process.env.VRIFT_DISABLE)) return runPlain(exe, argv);

  let client: IpcClient | undefined;
  let reply: CompileReply | ErrorReply;
  const timeout = Number(process.env.VRIFT_TIMEOUT_MS) || 10_000;
  try {
    if (!fs.existsSync(paths.socket)) await ensureDaemon(process.env);
    client = new IpcClient(paths.endpoint, timeout);
    const env = Object.entries(process.env).map(([k, v]) => `${k}=${v}`);
    reply = await client.request({ t: 'compile', cwd, exe, argv, env, tty: process.stderr.isTTY === true, wf: true });
  } catch (err) {
    await client?.close();
    noteFallback(paths.logFile, (err as { code?: string }).code === 'ETIMEOUT' ? 'timeout' : 'connect');
    return runPlain(exe, argv);
  }
  try {
    switch (reply.t) {
      case 'hit':
        try {
          for (const [f, data] of reply.files ?? []) {
            fs.rmSync(f, { force: true });
            fs.writeFileSync(f, data, { flag: 'wx', mode: 0o666 });
          }
        } catch {
          noteFallback(paths.logFile, 'write_outputs');
          return runPlain(exe, argv); // e.g. a missing output directory: the compiler decides
        }
        await new Promise<void>((r) => process.stdout.write(reply.out, () => r()));
        await new Promise<void>((r) => process.stderr.write(reply.err, () => r()));
        return reply.code;
      case 'run': {
        const run = await runCaptured(reply.argv[0], reply.argv, reply.env ?? []);
        await client
          .request({ t: 'done', id: reply.id, code: run.code, out: run.out, err: run.err, nocache: run.nocache })
          .catch(() => noteFallback(paths.logFile, 'done'));
        return run.code;
      }
      default:
        return runPlain(exe, argv);
    }
  } finally {
    await client.close();
  }
}

process.exitCode = await main();
