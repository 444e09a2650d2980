import path from 'node:path';
import type { Relativizer } from '../relativize.js';

// What finishing a compile works out for one dependency as the depfile spells it, for one
// search path and one (cwd, base dir): its absolute path, key form, and the same name in
// every earlier search directory, as flat [dir, name, dir's key form] triples. The same for
// every compile of a tree (a cold build works out many times more of them than there are
// distinct ones), so it is worked out once; whether the candidates exist is asked on every
// compile.
export interface DepPlan {
  abs: string;
  form: string;
  common: string;
  cands: string[];
}
const PLANS_MAX = 20_000;

const NEEDS_RESOLVE = /\/\.{1,2}(\/|$)|\/\/|.\/$/;

/** path.resolve(cwd, p), without its cost for the common case: p already absolute and normal. */
function resolveIn(cwd: string, p: string): string {
  return p.charCodeAt(0) === 47 && !NEEDS_RESOLVE.test(p) ? p : path.resolve(cwd, p);
}

/** Plans by context (key forms and search path); all are dropped at once past PLANS_MAX. */
export class DepPlans {
  private byContext = new Map<string, Map<string, DepPlan>>();
  private count = 0;

  for(context: string, search: string[]): { get(d: string, cwd: string, rel: Relativizer): DepPlan; once(d: string, cwd: string, rel: Relativizer): DepPlan } {
    let plans = this.byContext.get(context);
    if (!plans) {
      if (this.count >= PLANS_MAX) this.clear();
      this.byContext.set(context, (plans = new Map()));
    }
    const m = plans;
    const searchPrefix = search.map((d) => (d === '/' ? '/' : d + '/'));
    return {
      get: (d, cwd, rel) => {
        let plan = m.get(d);
        if (!plan) {
          plan = planDep(d, cwd, rel, search, searchPrefix);
          m.set(d, plan);
          this.count++;
        }
        return plan;
      },
      once: (d, cwd, rel) => m.get(d) ?? planDep(d, cwd, rel, search, searchPrefix),
    };
  }

  clear(): void {
    this.byContext.clear();
    this.count = 0;
  }
}

function planDep(d: string, cwd: string, rel: Relativizer, search: string[], searchPrefix: string[]): DepPlan {
  const abs = resolveIn(cwd, d);
  const [form, common] = rel.keyed(d);
  const cands: string[] = [];
  const i = searchPrefix.findIndex((pre) => abs.startsWith(pre));
  if (i > 0) {
    // search dirs and abs are normalized, so plain concatenation is path.join here
    const relName = abs.slice(searchPrefix[i].length);
    const slash = relName.lastIndexOf('/');
    const base = relName.slice(slash + 1);
    for (let j = 0; j < i; j++) {
      if (searchPrefix[j] + relName === abs) continue;
      const dir = slash < 0 ? search[j] : searchPrefix[j] + relName.slice(0, slash);
      cands.push(dir, base, rel.keyed(dir)[0]);
    }
  }
  return { abs, form, common, cands };
}
