import path from 'node:path';

// Base-dir normalization. An absolute path that shares more than `baseDir` with the
// working directory is keyed relative to cwd, so two checkouts of one project in
// different directories compute the same key. Relativized forms carry a marker so they
// never collide with a path the build itself spelled relative (the compiler embeds the
// two differently). Every relativized path's common ancestor with cwd is an "anchor":
// if an output contains the anchor's bytes, the output embeds the checkout's location
// and is only valid there (see anchorOf / scanAnchor).
export const REL_MARK = '\u0000rel:';

function depth(p: string): number {
  return p === '/' ? 0 : p.split('/').length - 1;
}

function commonAncestor(a: string, b: string): string {
  const as = a.split('/');
  const bs = b.split('/');
  let i = 0;
  while (i < as.length && i < bs.length && as[i] === bs[i]) i++;
  const c = as.slice(0, i).join('/');
  return c === '' ? '/' : c;
}

// Key forms by (cwd, base dir, path): the same headers are keyed for every compile run in
// one directory, and computing a form is a normalize, two splits and a relative().
const FORMS_MAX = 200_000;

/** The key forms already computed, shared by the Relativizers of one daemon (its front-ends). */
export class KeyForms {
  private readonly forms = new Map<string, [form: string, common: string]>();

  get(k: string): [form: string, common: string] | undefined {
    return this.forms.get(k);
  }

  set(k: string, f: [form: string, common: string]): void {
    if (this.forms.size >= FORMS_MAX) this.forms.clear();
    this.forms.set(k, f);
  }

  clear(): void {
    this.forms.clear();
  }
}

export class Relativizer {
  private shortest: string;
  private readonly baseDepth: number;
  private readonly base: string;
  private readonly memo: string;

  constructor(
    readonly cwd: string,
    readonly baseDir: string,
    private readonly forms: KeyForms,
  ) {
    this.shortest = cwd;
    this.base = path.resolve(baseDir);
    this.baseDepth = depth(this.base);
    this.memo = `${cwd}\u0000${this.base}\u0000`;
  }

  // The key form of a path as the build spelled it.
  // `track` is false for paths that are only checked, never seen by the compiler.
  key(p: string, track = true): string {
    const f = this.keyed(p);
    if (track) this.track(f[1]);
    return f[0];
  }

  /** key()'s form and the ancestor it shares with cwd, for callers that memoise forms and track() them. */
  keyed(p: string): readonly [form: string, common: string] {
    if (p.charCodeAt(0) !== 47 /* '/' */) return [p, ''];
    const mk = this.memo + p;
    let f = this.forms.get(mk);
    if (!f) {
      f = this.form(p);
      this.forms.set(mk, f);
    }
    return f;
  }

  /** Counts a path whose key form was relative to cwd (its `common`) towards the anchor. */
  track(common: string): void {
    if (common !== '' && common.length < this.shortest.length) this.shortest = common;
  }

  /** What key forms depend on: the same string for the same cwd and base dir. */
  get formsKey(): string {
    return this.memo;
  }

  private form(p: string): [string, string] {
    const abs = path.normalize(p);
    const common = commonAncestor(abs, this.cwd);
    const base = this.base;
    const under = base === '/' || common === base || common.startsWith(base + '/');
    if (!under || depth(common) <= this.baseDepth) return [abs, ''];
    return [REL_MARK + (path.relative(this.cwd, abs) || '.'), common];
  }

  // Back from key form to a path usable from this cwd, spelled the way the build would.
  static toPath(form: string, cwd: string): string {
    return form.startsWith(REL_MARK) ? path.resolve(cwd, form.slice(REL_MARK.length)) : form;
  }

  // Absolute path for stat/hash.
  static toAbs(form: string, cwd: string): string {
    if (form.charCodeAt(0) === 47 /* '/' */) return form; // stored normalized
    return path.resolve(cwd, form.startsWith(REL_MARK) ? form.slice(REL_MARK.length) : form);
  }

  // The anchor: the shortest common ancestor of cwd and every relativized path (cwd
  // itself when none), as [relative to cwd, absolute].
  anchor(): [string, string] {
    return [path.relative(this.cwd, this.shortest) || '.', this.shortest];
  }
}

// True when the output embeds the anchor's bytes (debug info, __FILE__, comp_dir...).
// An anchor of "/" can't be searched for; treat it as embedded (valid only in the same cwd).
export function embedsAnchor(data: Buffer, anchorAbs: string): boolean {
  return anchorAbs === '/' || data.indexOf(anchorAbs) !== -1;
}

export function anchorValid(anchor: [string, string] | null | undefined, cwd: string): boolean {
  return !anchor || path.resolve(cwd, anchor[0]) === anchor[1];
}
