import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

// Every import of the project's TypeScript, read by the compiler's parser: static imports,
// `import type`, re-exports, `import()` (also as a type: `import('x').T`), `import x =
// require()` and require(). What the layering test checks; a planted tree proves it sees all.

export interface Arrow {
  from: string; // repo-relative file, `shim/cli.ts`
  to: string; // repo-relative file it imports, `ipc/client.ts`
  how: string; // the form: import, import type, export from, import(), import type(), require
}

/** A file's module specifiers with their form; a non-literal `import()`/require is `spec: undefined`. */
export function importsIn(file: string, text: string): { spec: string | undefined; how: string }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: { spec: string | undefined; how: string }[] = [];
  const literal = (n: ts.Node | undefined) => (n && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) ? n.text : undefined);
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n)) {
      found.push({ spec: literal(n.moduleSpecifier), how: n.importClause?.isTypeOnly ? 'import type' : 'import' });
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier) {
      found.push({ spec: literal(n.moduleSpecifier), how: 'export from' });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference)) {
      found.push({ spec: literal(n.moduleReference.expression), how: 'import = require' });
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) {
      found.push({ spec: literal(n.argument.literal), how: 'import type()' });
    } else if (ts.isCallExpression(n)) {
      const isImport = n.expression.kind === ts.SyntaxKind.ImportKeyword;
      const isRequire = ts.isIdentifier(n.expression) && n.expression.text === 'require';
      if (isImport || isRequire) found.push({ spec: literal(n.arguments[0]), how: isImport ? 'import()' : 'require' });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

/** Top-level folders holding the product's TypeScript (not tests, benchmarks or builds). */
export function productFolders(root: string): string[] {
  const skip = new Set(['test', 'bench', 'dist', 'node_modules']);
  return fs
    .readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && !skip.has(d.name))
    .map((d) => d.name)
    .filter((d) => tsFiles(path.join(root, d)).length > 0)
    .sort();
}

function tsFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.ts') && !d.name.endsWith('.d.ts'))
    .map((d) => path.join(d.parentPath, d.name));
}

/** The arrows from the files of `folders` to other files of the project (packages and node:
 * builtins are not the project's). `unreadable`: imports whose target cannot be known. */
export function projectArrows(root: string, folders: string[]): { files: number; arrows: Arrow[]; unreadable: string[] } {
  const arrows: Arrow[] = [];
  const unreadable: string[] = [];
  let files = 0;
  for (const folder of folders) {
    for (const abs of tsFiles(path.join(root, folder))) {
      files++;
      const from = path.relative(root, abs);
      for (const { spec, how } of importsIn(abs, fs.readFileSync(abs, 'utf8'))) {
        if (spec === undefined) {
          unreadable.push(`${from}: ${how} of a computed name`);
          continue;
        }
        if (!spec.startsWith('.') && !spec.startsWith('/')) continue;
        // NodeNext: `./x.js` names `./x.ts`.
        const to = path.relative(root, path.resolve(path.dirname(abs), spec)).replace(/\.js$/, '.ts');
        arrows.push({ from, to, how });
      }
    }
  }
  return { files, arrows, unreadable };
}

export const topFolder = (file: string): string => file.split(path.sep)[0];

/** Cycles between top-level folders, each as `a → b → a` with one arrow per step. */
export function folderCycles(arrows: Arrow[]): string[] {
  const edges = new Map<string, Map<string, Arrow>>();
  for (const a of arrows) {
    const f = topFolder(a.from);
    const t = topFolder(a.to);
    if (f === t) continue;
    if (!edges.has(f)) edges.set(f, new Map());
    if (!edges.get(f)!.has(t)) edges.get(f)!.set(t, a);
  }
  const cycles = new Set<string>();
  const walk = (start: string, at: string, trail: string[], seen: Set<string>) => {
    for (const [next] of edges.get(at) ?? []) {
      if (next === start) {
        // One name per cycle: start from its smallest folder.
        const i = trail.indexOf([...trail].sort()[0]);
        const turned = [...trail.slice(i), ...trail.slice(0, i)];
        const steps = turned.map((f, k) => edges.get(f)!.get(turned[(k + 1) % turned.length])!);
        cycles.add(`${[...turned, turned[0]].join(' → ')} (${steps.map((s) => `${s.from} → ${s.to}`).join('; ')})`);
      } else if (!seen.has(next)) {
        seen.add(next);
        walk(start, next, [...trail, next], seen);
        seen.delete(next);
      }
    }
  };
  for (const f of edges.keys()) walk(f, f, [f], new Set([f]));
  return [...cycles].sort();
}
