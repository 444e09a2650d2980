// rustc's dep-info (`--emit=dep-info`): make rules "output: inputs", one empty rule per
// input, then `# env-dep:NAME=value` (or `# env-dep:NAME` when unset) for every variable
// env!/option_env! read. Paths escape spaces as `\ `; env values escape `\`, `\n`, `\r`.

export interface DepInfo {
  deps: string[];
  envs: [string, string | null][]; // value in rustc's escaped form
}

function splitPaths(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && s[i + 1] === ' ') {
      cur += ' ';
      i++;
    } else if (c === ' ' || c === '\t') {
      if (cur) out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) out.push(cur);
  return out;
}

// Index of the rule's ':' (the first one followed by a space or the line's end, so a
// Windows-style "C:" would not split; on Linux any ':' in a path is escaped the same way).
function ruleColon(line: string): number {
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\\') {
      i++;
      continue;
    }
    if (line[i] === ':' && (i + 1 === line.length || line[i + 1] === ' ')) return i;
  }
  return -1;
}

export function parseDepInfo(text: string): DepInfo {
  const deps: string[] = [];
  const seen = new Set<string>();
  const envs: [string, string | null][] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('# env-dep:')) {
      const body = line.slice('# env-dep:'.length);
      const eq = body.indexOf('=');
      envs.push(eq === -1 ? [body, null] : [body.slice(0, eq), body.slice(eq + 1)]);
      continue;
    }
    if (line.startsWith('#') || !line.trim()) continue;
    const colon = ruleColon(line);
    if (colon === -1) continue;
    for (const d of splitPaths(line.slice(colon + 1))) {
      if (!seen.has(d)) {
        seen.add(d);
        deps.push(d);
      }
    }
  }
  return { deps, envs };
}

// The form rustc writes a variable's value in (rustc_interface::passes::escape_dep_env).
export function escapeEnvValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}
