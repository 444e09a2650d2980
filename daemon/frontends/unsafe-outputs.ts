import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

/**
 * Why an entry's payload must not be used because of where it would write, or undefined.
 * Results that name their outputs (rustc's and links': a file name inside the output
 * directory) may name only a plain file there: no separator, no `..`, no absolute path,
 * nothing hidden. Their decoders refuse such a result too, silently (a miss); this says why,
 * so an entry from another machine is refused, counted and logged like a bad signature.
 * Results that name no outputs (C compiles: the path is the command's `-o`) pass.
 */
export function unsafeOutputs(payload: Buffer): string | undefined {
  let v: unknown;
  try {
    v = packr.unpack(payload);
  } catch {
    return undefined; // not this check's business: the front-end reads it as absent
  }
  const outputs = (v as { outputs?: unknown } | null)?.outputs;
  if (!Array.isArray(outputs)) return undefined;
  for (const o of outputs) {
    const name = (o as { name?: unknown } | null)?.name;
    if (name === undefined) continue;
    if (typeof name !== 'string' || name === '' || name.includes('/') || name.includes('\\') || name.includes('\0') || name.startsWith('.'))
      return `output path ${JSON.stringify(String(name).slice(0, 200))} is not a plain file name in the output directory`;
  }
  return undefined;
}
