import bytes from 'bytes';
import ms from 'ms';
import { VriftError } from '../../ipc/errors.js';
import { parseStoreOp } from '../../ipc/messages/store-op.js';
import type { Handler } from '../context.js';

export const storeOp: Handler = async (msg, ctx) => {
  const req = parseStoreOp(msg);
  await ctx.writes.settle(); // operate on everything stored so far
  switch (req.op) {
    case 'rescan':
      await ctx.store.rescan();
      return { t: 'store-op', result: ctx.store.usage() as unknown as Record<string, unknown> };
    case 'verify':
      return { t: 'store-op', result: (await ctx.store.verify()) as unknown as Record<string, unknown> };
    case 'clean': {
      const maxSize = req.maxSize !== undefined ? bytes.parse(req.maxSize) : undefined;
      const olderThan = req.olderThan !== undefined ? ms(req.olderThan as ms.StringValue) : undefined;
      if (maxSize === null || Number.isNaN(maxSize) || (olderThan !== undefined && !Number.isFinite(olderThan))) {
        throw new VriftError('ECONFIG', 'invalid --max-size or --older-than');
      }
      const all = maxSize === undefined && olderThan === undefined;
      return { t: 'store-op', result: (await ctx.store.clean({ maxSize: maxSize ?? undefined, olderThan, all })) as unknown as Record<string, unknown> };
    }
  }
};
