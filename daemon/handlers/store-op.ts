import { parseDuration, parseSize } from '../../config/units.js';
import type { Handler } from '../context.js';
import { awaitSentReports } from '../sent-reports.js';

export const storeOp: Handler<'store-op'> = async (req, ctx) => {
  // Operate on everything stored so far, finished compiles' reports included.
  await awaitSentReports(ctx);
  await ctx.writes.settle();
  switch (req.op) {
    case 'settle':
      return { t: 'store-op', result: ctx.store.usage() as unknown as Record<string, unknown> };
    case 'rescan':
      await ctx.store.rescan();
      return { t: 'store-op', result: ctx.store.usage() as unknown as Record<string, unknown> };
    case 'verify':
      return { t: 'store-op', result: (await ctx.store.verify()) as unknown as Record<string, unknown> };
    case 'clean': {
      // Read before anything is removed: an unreadable value must not fall through to "all".
      const maxSize = req.maxSize !== undefined ? parseSize(req.maxSize, 'store-op maxSize') : undefined;
      const olderThan = req.olderThan !== undefined ? parseDuration(req.olderThan, 'store-op olderThan') : undefined;
      const all = maxSize === undefined && olderThan === undefined;
      return { t: 'store-op', result: (await ctx.store.clean({ maxSize, olderThan, all })) as unknown as Record<string, unknown> };
    }
  }
};
