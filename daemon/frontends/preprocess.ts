import { spawn } from 'node:child_process';
import { Blake3Hasher } from '@napi-rs/blake-hash';

// Preprocessor mode: the hash of `<compiler> <args> -E`, for sources whose include set can't
// be validated from a manifest (e.g. `__has_include` in the project's own headers, whose
// answer changes when a file appears anywhere on the include path).

// Output and dependency options go; -E replaces -c/-S. The rest is the call as the build made it.
const DROP_WITH_VALUE = new Set(['-o', '-MF', '-MT', '-MQ']);
const DROP = new Set(['-c', '-S', '-MD', '-MMD', '-MP', '-M', '-MM', '-MG']);

export function preprocessArgs(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (DROP_WITH_VALUE.has(a)) {
      i++;
      continue;
    }
    if (DROP.has(a) || /^-(o|MF|MT|MQ).+/.test(a) || /^-Wp,-MM?D,/.test(a)) continue;
    out.push(a);
  }
  return [...out, '-E'];
}

export async function preprocessHash(exe: string, args: string[], cwd: string, env: Record<string, string>, timeoutMs = 120_000): Promise<string | undefined> {
  const h = new Blake3Hasher();
  return (await runCompiler(exe, preprocessArgs(args), cwd, env, (d) => h.update(d), timeoutMs)) ? h.digest('hex') : undefined;
}

/**
 * Runs the compiler from the daemon (preprocessor mode, the `-M` run after a `-MM` miss):
 * stdout to `onData`, stderr dropped; true when it exits 0 within `timeoutMs`.
 */
export function runCompiler(
  exe: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
  onData: (d: Buffer) => void,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean) => {
      if (!done) resolve(ok);
      done = true;
    };
    // VRIFT_DISABLE: a compiler wrapper that calls the shim again must not come back here.
    const child = spawn(exe, args, { cwd, env: { ...env, VRIFT_DISABLE: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(false);
    }, timeoutMs);
    child.stdout.on('data', onData);
    child.on('error', () => finish(false));
    child.on('close', (code) => {
      clearTimeout(timer);
      finish(code === 0);
    });
  });
}
