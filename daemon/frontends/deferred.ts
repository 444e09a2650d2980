import type { Finish } from './types.js';

/** Work filed under a key, run when the daemon is idle (store/idle-writer.ts) or when a lookup asks. */
export interface Deferred {
  add(k: string, work: () => Promise<void>): void;
  run(k: string): Promise<void>;
}

/**
 * Files the building of a cache entry under `key` to run when the build pauses, and answers
 * at once: the returned Finish says later how it went. `onRun` is called as it starts
 * (a front-end's budget of waiting entries); a throwing `build` is logged through `onError`
 * and counts as store_failed.
 */
export function finishLater(
  deferred: Deferred,
  key: string,
  build: () => Promise<Finish> | Finish,
  onRun: () => void,
  onError: (err: unknown) => void,
): Finish {
  let settle!: (f: Finish) => void;
  const result = new Promise<Finish>((r) => (settle = r));
  deferred.add(key, async () => {
    onRun();
    let fin: Finish;
    try {
      fin = await build();
    } catch (err) {
      onError(err);
      fin = { stored: false, reason: 'store_failed' };
    }
    settle(fin);
    if (fin.stored === true) await fin.write.catch(() => {});
  });
  return { stored: 'later', result };
}
