import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { capture } from './exec.js';

// Per-invocation latency: one command repeated many times under `hyperfine -N`
// (no shell in between), reported as median and p99 of the individual runs.

export interface MicroResult {
  name: string;
  tool: string;
  runs: number;
  median_ms: number;
  p99_ms: number;
  mean_ms: number;
  min_ms: number;
  command: string;
  error?: string;
}

/** POSIX-shell word splitting, enough for the `command` strings in compile_commands.json. */
export function shellSplit(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      cur += s.slice(i + 1, j < 0 ? s.length : j);
      i = j < 0 ? s.length : j;
      inWord = true;
    } else if (c === '"') {
      i++;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1])) i++;
        cur += s[i];
      }
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

const shellQuote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

export interface CompileCommand {
  directory: string;
  argv: string[]; // compiler first, no launcher
}

/**
 * The compile of `file` for `target` exactly as the build ran it: asked from the generated
 * Makefile (`make -n -B`), because compile_commands.json leaves out the -MD -MT -MF
 * depfile flags, and a cache keyed on them would miss on the first call.
 */
export function compileCommandFor(buildDir: string, file: string, target: string): CompileCommand {
  const obj = `CMakeFiles/${target}.dir/${file}.o`;
  const r = capture(['make', '-n', '-B', '-f', `CMakeFiles/${target}.dir/build.make`, obj], { cwd: buildDir, env: process.env });
  const line = r.ok ? r.stdout.split('\n').find((l) => l.includes(` -o ${obj} `) && l.includes(' -c ')) : undefined;
  let argv: string[];
  if (line) {
    argv = shellSplit(line);
  } else {
    const entries = JSON.parse(fs.readFileSync(path.join(buildDir, 'compile_commands.json'), 'utf8')) as {
      command?: string;
      arguments?: string[];
      file: string;
      output?: string;
    }[];
    const e = entries.find((x) => x.file.endsWith(`/${file}`) && (x.output ?? x.command ?? '').includes(`${target}.dir/`));
    if (!e) throw new Error(`no compile command for ${file} (${target}) in ${buildDir}`);
    argv = e.arguments ?? shellSplit(e.command!);
  }
  // Drop a launcher if there is one.
  while (argv.length > 1 && /(^|\/)(ccache|sccache|vrift-shim)$/.test(argv[0])) argv = argv.slice(1);
  return { directory: buildDir, argv };
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function hyperfine(
  name: string,
  tool: string,
  argv: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; runs: number; warmup?: number },
): MicroResult {
  const command = argv.map(shellQuote).join(' ');
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vrift-bench-hf-'));
  const out = path.join(tmp, 'hf.json');
  try {
    const r = capture(
      ['hyperfine', '-N', '--style', 'none', '--warmup', String(opts.warmup ?? 3), '--runs', String(opts.runs), '--export-json', out, command],
      { cwd: opts.cwd, env: opts.env, timeoutMs: 30 * 60_000 },
    );
    if (!r.ok) throw new Error(r.stderr.trim().split('\n').slice(-3).join(' '));
    const res = (JSON.parse(fs.readFileSync(out, 'utf8')) as { results: { times: number[] }[] }).results[0];
    const ms = res.times.map((t) => t * 1000).sort((a, b) => a - b);
    return {
      name,
      tool,
      runs: ms.length,
      median_ms: quantile(ms, 0.5),
      p99_ms: quantile(ms, 0.99),
      mean_ms: ms.reduce((a, b) => a + b, 0) / ms.length,
      min_ms: ms[0],
      command,
    };
  } catch (e) {
    return { name, tool, runs: 0, median_ms: NaN, p99_ms: NaN, mean_ms: NaN, min_ms: NaN, command, error: (e as Error).message };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
