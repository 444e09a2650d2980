/**
 * Resolves once `cond` holds, checking every `everyMs` (after running `each`, if given);
 * throws naming `what` when it still does not hold after `ms` (a function: called then, to say
 * what it last saw). A wait never ends silently, nor at ava's 5-minute timeout.
 */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  what: string | (() => string),
  o: { ms?: number; everyMs?: number; each?: () => void } = {},
): Promise<void> {
  const deadline = Date.now() + (o.ms ?? 30_000);
  for (;;) {
    o.each?.();
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`waited ${o.ms ?? 30_000} ms for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, o.everyMs ?? 10));
  }
}
