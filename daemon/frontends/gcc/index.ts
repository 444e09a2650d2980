// The gcc/clang front-end's public surface; the modules hold the code.
export * from './types.js';
export { argsForMiss, compilerFlavor, parseGccArgs, replaceSuffix, sourceStem, type MissArgs } from './args.js';
export { defaultTarget, gccTargetOrder, mungeGcc, parseDepfile, writeDepfile, type Depfile, type WriteOptions } from './depfile.js';
export { planSplit, SPLIT_TMP, type SplitPlan, type SplitRefusal } from './split.js';
export { expandResponseFiles, splitResponseFile } from './response.js';
export { filterSystemDeps, parseSearchList, sysdirFlags, systemIncludeDirs, type RunProbe, type SysdirOptions } from './sysdirs.js';
