import path from 'node:path';
import type { UncacheableReason } from '../../ipc/reasons.js';
import type { ProjectSettings } from '../../config/config.js';

// What a project's cache_targets and cache_extensions keep out of the cache
// (docs/configuration.md). Both only narrow what is cached: an output they do not govern
// (an executable, a shared object, a link) is cached as before.

/** cache_extensions for a C/C++ compile: the object's extension (`-o x.obj`). */
export function objectOutsideScope(output: string, outputKind: 'object' | 'assembly', s: ProjectSettings): UncacheableReason | undefined {
  const ext = path.extname(output);
  return outputKind === 'object' && ext !== '' && !s.cache_extensions.includes(ext) ? 'not_cache_extension' : undefined;
}

// cargo's out-dirs: <target>[/<triple>]/<profile>/{deps,build/<pkg>-<hash>,examples}.
const PROFILE_CHILD = new Set(['deps', 'build', 'examples']);

/** cache_targets and cache_extensions for rustc: the cargo profile the out-dir is in (only when
 * cargo runs it), and the library files its crate types write (.rlib, .rmeta, .a). */
export function rustOutsideScope(
  outDirAbs: string,
  crateTypes: string[],
  emits: string[],
  env: Record<string, string>,
  s: ProjectSettings,
): UncacheableReason | undefined {
  if (env.CARGO) {
    const parts = outDirAbs.split('/');
    for (let i = parts.length - 1; i > 1; i--) {
      if (!PROFILE_CHILD.has(parts[i])) continue;
      if (!s.cache_targets.includes(parts[i - 1])) return 'not_cache_target';
      break;
    }
  }
  const libs = new Set<string>();
  const metadataOnly = emits.length > 0 && emits.every((e) => e === 'metadata' || e === 'dep-info');
  for (const t of crateTypes) {
    if (metadataOnly) libs.add('.rmeta');
    else if (t === 'lib' || t === 'rlib') libs.add('.rlib');
    else if (t === 'staticlib') libs.add('.a');
  }
  for (const ext of libs) if (!s.cache_extensions.includes(ext)) return 'not_cache_extension';
  return undefined;
}
