import { envFlag } from '../../ipc/env-flag.js';
import type { UncacheableReason } from '../../ipc/reasons.js';
import { VriftError } from '../../ipc/errors.js';
import type { CompileReply, CompileRequest } from '../../ipc/messages/compile.js';
import type { DaemonContext, Handler } from '../context.js';
import type { OutputSpares } from '../frontends/materialize.js';

function envMap(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function withSpares(files: [string, Buffer][], spares: OutputSpares): ([string, Buffer] | [string, Buffer, string])[] {
  return files.map(([f, data]) => {
    const s = spares.take(f);
    return s ? [f, data, s] : [f, data];
  });
}

export const compile: Handler<'compile'> = async (req, ctx) => {
  const t0 = performance.now();
  const label = { name: undefined as string | undefined };
  const reply = await answer(req, ctx, label);
  ctx.latency.record(label.name ?? String(reply.t), performance.now() - t0);
  return reply;
};

const answer = async (req: CompileRequest, ctx: DaemonContext, label: { name?: string }): Promise<CompileReply> => {
  ctx.spares?.touch();
  ctx.live?.buildActive();
  const env = envMap(req.env);
  const session = env.VRIFT_SESSION || undefined;
  ctx.stats.add('requests', session);
  const pass = (reason: UncacheableReason) => {
    ctx.stats.reason('uncacheable', reason, session);
    if (reason === 'unsupported_option') ctx.live?.passedThrough(req);
    return { t: 'pass', reason } as const;
  };
  if (envFlag(env.VRIFT_DISABLE)) return pass('disabled');
  // The project's settings (its velo.toml, the build's VRIFT_*): a bad one passes, as vrift config says.
  const project = ctx.projects.resolve(req.cwd, env);
  if (project instanceof VriftError) return pass('config_error');
  if (!project.enabled) return pass('disabled');
  if (!req.exe.startsWith('/')) return pass('exe_not_absolute');
  const frontend = ctx.frontends.find((f) => f.handles(req.argv[0] ?? '', req.exe, req.argv.slice(1)));
  if (!frontend) return pass('unknown_compiler');

  // A local manifest with no entry for these inputs still asks the team cache and peers for
  // theirs: after a pull, a teammate has usually built exactly these inputs.
  const outcome = await frontend.lookup(req, env, { shared: true });
  if (outcome.kind === 'hit' || outcome.kind === 'miss') label.name = outcome.latency;
  switch (outcome.kind) {
    case 'pass':
      return pass(outcome.reason);
    case 'split':
      ctx.stats.add('split_commands', session);
      return outcome.link ? { t: 'split', cmds: outcome.compiles, link: outcome.link } : { t: 'split', cmds: outcome.compiles };
    case 'hit':
      ctx.stats.add('hits', session);
      ctx.stats.add('hit_bytes', session, outcome.bytes);
      if (!outcome.files) return { t: 'hit', out: outcome.out, err: outcome.err, code: outcome.code };
      return {
        t: 'hit',
        out: outcome.out,
        err: outcome.err,
        code: outcome.code,
        files: req.sp && ctx.spares ? withSpares(outcome.files, ctx.spares) : outcome.files,
      };
    case 'miss': {
      const id = `${ctx.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
      const oneWay = req.ow && outcome.collect !== undefined;
      ctx.pending.set(id, {
        id,
        frontend: outcome.frontend ?? frontend,
        state: outcome.pending,
        session,
        created: ctx.now(),
        ...(oneWay ? { oneWay, ...(req.pid !== undefined ? { pid: req.pid } : {}) } : {}),
      });
      ctx.stats.add('misses', session);
      return {
        t: 'run',
        id,
        argv: outcome.argv,
        env: outcome.env ?? [],
        ...(oneWay ? { col: outcome.collect, ...(outcome.mmd ? { mmd: outcome.mmd } : {}) } : {}),
      };
    }
  }
};
