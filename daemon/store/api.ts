// The store's public surface; everything else in this folder is an implementation layer.
export type { Attach, Cache, StoreLike } from './contract.js';
export type { LocalStoreOptions, StoreIO, CleanOptions, CleanResult, VerifyResult, Usage, Counters } from './types.js';
export { LocalStore } from './local.js';
export { defaultStoreRoot, checkHex, CACHEDIR_TAG } from './layout.js';
