import type { Command } from 'commander';
import { defaultKeyName, keysDir, readSigningKey, writeKeyPair } from '../trust/key-file.js';
import { keyNameProblem } from '../trust/keys.js';

export interface KeysCommandDeps {
  home: () => string;
  /** The key the daemon signs with (`signing_key`), and whether that is the generated one's place. */
  signingKey: () => { file: string; isDefault: boolean };
  out: (s: string) => void;
  err: (s: string) => void;
  fail: (msg: string) => never;
}

// `vrift keys`: the instance's ed25519 pair (trust/key-file.ts). What a teammate pastes into
// their `trusted_keys` is the one line `vrift keys show` prints.
export function registerKeys(program: Command, d: KeysCommandDeps): void {
  const keys = program.command('keys').description("this instance's signing key: its public line is what teammates put in trusted_keys");
  keys
    .command('generate')
    .description(`make an ed25519 key pair in $VRIFT_HOME/keys/ and print its public line (NAME:BASE64)`)
    .option('--name <name>', `the key's name, shown to whoever trusts it (default: user@host)`)
    .option('--force', 'replace an existing key (entries it signed then stay trusted only where its old line is)')
    .action((o: { name?: string; force?: boolean }) => {
      const name = o.name ?? defaultKeyName();
      const bad = keyNameProblem(name);
      if (bad) d.fail(`--name: ${bad}`);
      let line: string;
      try {
        line = writeKeyPair(keysDir(d.home()), name, !!o.force).line;
      } catch (e) {
        d.fail((e as Error).message);
      }
      d.out(line! + '\n');
      const used = d.signingKey();
      if (!used.isDefault) d.err(`vrift: note: signing_key = ${used.file} is what the daemon signs with, not this key\n`);
      else if (o.force) d.err('vrift: a running daemon signs with the new key after its next start (vrift daemon stop)\n');
    });
  keys
    .command('show')
    .description('print the public line (NAME:BASE64) of the key this instance signs with')
    .action(() => {
      const { file, isDefault } = d.signingKey();
      let line: string;
      try {
        line = readSigningKey(file).line;
      } catch (e) {
        d.fail(
          isDefault && (e as { fields?: { path?: string } }).fields?.path === file && /ENOENT/.test((e as Error).message)
            ? `no signing key yet (${file}); \`vrift keys generate\` makes one (the daemon also does on its first start)`
            : (e as Error).message,
        );
      }
      d.out(line! + '\n');
    });
}
