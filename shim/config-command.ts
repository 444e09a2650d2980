import { redactUrl } from '../config/remote-url.js';
import { formatDuration, formatSize } from '../config/units.js';
import { CONFIG_KEYS, INSTANCE_KEYS, SCHEMA, loadConfig, type Config } from '../config/config.js';
import { ipcCall } from '../ipc/client.js';
import { tokenFingerprint } from '../ipc/messages/config.js';
import { instancePaths, type InstancePaths } from '../ipc/paths.js';
import { lockHeld, ping } from './daemon-control.js';

// `vrift config`: what a compile in this directory gets. Project settings as the daemon
// applies them per compile; instance settings as a daemon started now would read them,
// flagged where the running daemon (which read them when it started) differs.

/** A value as a config file takes it, so a line pasted into config.toml means the same. */
export function tomlValue(key: keyof Config, v: unknown): string {
  const kind = SCHEMA[key].kind;
  if (kind === 'size' || kind === 'duration') {
    const s = kind === 'size' ? formatSize(v as number) : formatDuration(v as number);
    return /^\d+$/.test(s) && kind === 'size' ? s : s === '0' ? '0' : JSON.stringify(s);
  }
  return JSON.stringify(v);
}

// A busy daemon (a -j build hashing) may take a while to answer; silence here would hide a
// value it does not apply.
const ANSWER_MS = 5000;

interface Running {
  pid: number;
  config: Record<string, unknown>;
  token_fp: string;
}

// Asked first, whatever the files say: the daemon also forgets the project files it read,
// so what is shown here is what the next compile gets, an error included.
async function running(paths: InstancePaths): Promise<Running | 'silent' | undefined> {
  const busy = () => (lockHeld(paths) ? 'silent' : undefined);
  if (!(await ping(paths, ANSWER_MS))) return busy();
  const reply = await ipcCall(paths.endpoint, { t: 'config' }, ANSWER_MS).catch(() => undefined);
  return reply?.t === 'config' ? (reply as unknown as Running) : busy();
}

export async function showConfig(o: { json?: boolean }, env: NodeJS.ProcessEnv, out: (s: string) => void): Promise<void> {
  const state = await running(instancePaths(env));
  const daemon = typeof state === 'object' ? state : undefined;
  const r = loadConfig({ env });
  const notApplied: Partial<Record<keyof Config, unknown>> = {};
  for (const k of daemon ? INSTANCE_KEYS : []) {
    const same =
      k === 'remote_token' ? tokenFingerprint(r.config.remote_token) === daemon!.token_fp : JSON.stringify(daemon!.config[k]) === JSON.stringify(r.config[k]);
    if (!same) notApplied[k] = k === 'remote_token' ? '(another token)' : daemon!.config[k];
  }
  // Config output ends up in bug reports: never print the remote's secret.
  const config = { ...r.config, remote_url: redactUrl(r.config.remote_url), ...(r.config.remote_token ? { remote_token: '(set)' } : {}) };
  if (typeof notApplied.remote_url === 'string') notApplied.remote_url = redactUrl(notApplied.remote_url);
  if (o.json) {
    const scope = Object.fromEntries(CONFIG_KEYS.map((k) => [k, SCHEMA[k].scope]));
    out(
      JSON.stringify(
        {
          config,
          sources: r.sources,
          scope,
          files: r.files,
          daemon: daemon ? { pid: daemon.pid } : null,
          not_applied: notApplied,
          ignored: r.ignored.map(({ key, where }) => ({ key, where })),
        },
        null,
        2,
      ) + '\n',
    );
    return;
  }
  out(`# user config: ${r.files.user}\n# project config: ${r.files.project ?? '(no velo.toml found)'}\n`);
  out(
    `# what a compile in ${process.cwd()} gets; per-instance settings apply when the daemon starts (${daemon ? `running: pid ${daemon.pid}` : state === 'silent' ? `running, but it did not answer within ${ANSWER_MS / 1000} s: what it applies is not known` : 'not running'})\n`,
  );
  out('[l2_cache]\n');
  for (const k of CONFIG_KEYS) {
    const src = r.sources[k];
    let note = `# ${src.source}${src.where ? ` (${src.where})` : ''}, per ${SCHEMA[k].scope}`;
    if (k in notApplied) {
      const theirs = k === 'remote_token' ? 'another token' : tomlValue(k, notApplied[k]);
      note += `; NOT APPLIED: the running daemon uses ${theirs}`;
    }
    const value = k === 'remote_token' && r.config.remote_token ? '"(set)"' : tomlValue(k, config[k]);
    out(`${k} = ${value}`.padEnd(48) + ` ${note}\n`);
  }
  for (const i of r.ignored) {
    out(`# not applied: ${i.where} sets ${i.key}, a per-instance setting (set it in ${r.files.user} or ${SCHEMA[i.key].env[0]})\n`);
  }
  if (Object.keys(notApplied).length > 0) {
    out(`# to apply what is marked NOT APPLIED: vrift daemon stop (the next compile or vrift command starts it with these)\n`);
  }
}
