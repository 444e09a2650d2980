import { VriftError } from '../../ipc/errors.js';
import type { Handler } from '../context.js';
import type { Finish } from '../frontends/types.js';

export const done: Handler<'done'> = async (req, ctx) => {
  const p = ctx.pending.get(req.id);
  if (!p) throw new VriftError('ENOTFOUND', `no pending compile ${req.id}`);
  ctx.pending.delete(req.id);
  if (req.files) ctx.stats.add('one_way_reports', p.session);
  // `stored` counts a result once it is in the store: its writes (queued for a pause in
  // lookups) done, and none that failed since this report came.
  const from = ctx.writes.mark();
  const fin = await p.frontend.finish(p.state, req);
  const account = (fin: Finish): void => {
    if (fin.stored === 'later') return ctx.track(fin.result.then(account));
    if (!fin.stored) {
      // A compile that fails is not a miss the cache could have saved: it leaves the hit rate.
      if (fin.reason === 'compile_failed') {
        ctx.stats.add('compile_failed', p.session);
        ctx.stats.add('misses', p.session, -1);
      } else ctx.stats.reason('not_stored', fin.reason, p.session);
      return;
    }
    // Not tracked: the writes it waits for happen at a pause, or when close() settles them.
    const count = (ok: boolean): void => {
      if (!ok) return ctx.stats.reason('not_stored', 'store_failed', p.session);
      ctx.stats.add('stored', p.session);
      ctx.stats.add('stored_bytes', p.session, fin.bytes);
    };
    ctx.track(
      fin.write.then(
        () => void ctx.writes.written(from).then(count),
        (err) => {
          ctx.stats.reason('errors', (err as VriftError).code ?? 'ESTORE', p.session);
          ctx.log.log('warn', 'store', 'storing a result failed', { err });
        },
      ),
    );
  };
  account(fin);
  return { t: 'ok' };
};
