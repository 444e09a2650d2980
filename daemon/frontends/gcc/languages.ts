// Source languages by extension (gcc's default_compilers table, plus clang's extras),
// and which of them vrift caches.

const BY_EXTENSION: Record<string, string> = {
  c: 'c',
  i: 'cpp-output',
  ii: 'c++-cpp-output',
  m: 'objective-c',
  mi: 'objective-c-cpp-output',
  mm: 'objective-c++',
  M: 'objective-c++',
  mii: 'objective-c++-cpp-output',
  h: 'c-header',
  hh: 'c++-header',
  H: 'c++-header',
  hp: 'c++-header',
  hxx: 'c++-header',
  hpp: 'c++-header',
  HPP: 'c++-header',
  'h++': 'c++-header',
  tcc: 'c++-header',
  cc: 'c++',
  cp: 'c++',
  cxx: 'c++',
  cpp: 'c++',
  CPP: 'c++',
  'c++': 'c++',
  C: 'c++',
  s: 'assembler',
  S: 'assembler-with-cpp',
  sx: 'assembler-with-cpp',
  cppm: 'c++-module',
  ixx: 'c++-module',
  cu: 'cuda',
  cl: 'cl',
  f: 'f77',
  for: 'f77',
  F: 'f77-cpp-input',
  f90: 'f95',
  f95: 'f95',
  F90: 'f95-cpp-input',
  ads: 'ada',
  adb: 'ada',
  d: 'd',
  go: 'go',
  mod: 'modula-2',
};

/** gcc's -x spellings that mean the same thing as ours. */
const ALIASES: Record<string, string> = {
  objc: 'objective-c',
  'objc++': 'objective-c++',
  'objc-cpp-output': 'objective-c-cpp-output',
  'objc++-cpp-output': 'objective-c++-cpp-output',
  'objective-c-header': 'objective-c-header',
  'objc-header': 'objective-c-header',
  'objc++-header': 'objective-c++-header',
  'c++-system-header': 'c++-header',
  'c++-user-header': 'c++-header',
};

/** null: not a source file; gcc hands it to the linker. */
export function languageOfFile(file: string): string | null {
  const base = file.slice(file.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  if (dot < 0) return null;
  return BY_EXTENSION[base.slice(dot + 1)] ?? null;
}

export function canonicalLanguage(x: string): string {
  return ALIASES[x] ?? x;
}

const CACHEABLE = new Set([
  'c',
  'c++',
  'objective-c',
  'objective-c++',
  'assembler-with-cpp',
  'cpp-output',
  'c++-cpp-output',
  'objective-c-cpp-output',
  'objective-c++-cpp-output',
]);

const PREPROCESSED = new Set(['cpp-output', 'c++-cpp-output', 'objective-c-cpp-output', 'objective-c++-cpp-output']);

export const isCacheableLanguage = (lang: string): boolean => CACHEABLE.has(lang);
export const isPreprocessedLanguage = (lang: string): boolean => PREPROCESSED.has(lang);
export const isHeaderLanguage = (lang: string): boolean => lang.endsWith('-header');
