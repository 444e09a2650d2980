import { VriftError } from '../../ipc/errors.js';
import { parseDone } from '../../ipc/messages/done.js';
import type { Handler } from '../context.js';

export const done: Handler = async (msg, ctx) => {
  const req = parseDone(msg);
  const p = ctx.pending.get(req.id);
  if (!p) throw new VriftError('ENOTFOUND', `no pending compile ${req.id}`);
  ctx.pending.delete(req.id);
  const fin = await p.frontend.finish(p.state, { ...req, nocache: msg.nocache === true });
  if (!fin.stored) {
    if (fin.reason === 'compile_failed') ctx.stats.add('compile_failed', p.session);
    else ctx.stats.reason('not_stored', fin.reason, p.session);
    return { t: 'ok' };
  }
  ctx.track(
    fin.write.then(
      () => {
        ctx.stats.add('stored', p.session);
        ctx.stats.add('stored_bytes', p.session, fin.bytes);
      },
      (err) => {
        ctx.stats.reason('errors', (err as VriftError).code ?? 'ESTORE', p.session);
        ctx.log.log('warn', 'store', 'storing a result failed', { err });
      },
    ),
  );
  return { t: 'ok' };
};
