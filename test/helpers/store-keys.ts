import fs from 'node:fs';
import path from 'node:path';

const KEY = /^[0-9a-f]{64}$/;

/** The keys of what an instance's local store holds: entries (results, manifests) and objects. */
export function storeKeys(home: string): { ac: string[]; cas: string[] } {
  const keys = (dir: string) => {
    const root = path.join(home, 'l2', dir);
    if (!fs.existsSync(root)) return [];
    return (fs.readdirSync(root, { recursive: true }) as string[]).map((f) => path.basename(f)).filter((f) => KEY.test(f));
  };
  return { ac: keys('ac-v1').sort(), cas: keys('cas-v1').sort() };
}

/** Those of `keys` the server at `url` does not have (HEAD answered other than 200). */
export async function missingOnServer(url: string, keys: { ac: string[]; cas: string[] }): Promise<string[]> {
  const missing: string[] = [];
  for (const [kind, list] of [
    ['ac', keys.ac],
    ['cas', keys.cas],
  ] as const) {
    for (const k of list) {
      const r = await fetch(`${url}/${kind}/${k}`, { method: 'HEAD' });
      if (r.status !== 200) missing.push(`${kind}/${k}`);
    }
  }
  return missing;
}
