import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { durationOf, formatDuration, formatSize, parseDuration, parseSize, sizeOf } from '../config/units.js';
import { loadConfig } from '../config/config.js';
import { age, CLI, instance, run, type Instance } from './helpers/instance.js';
import { request, startServe, tmpDir } from './helpers/remote.js';

const GiB = 2 ** 30;
const BAD_SIZES = ['1zz', '5X', 'banana', '-1', '', ' ', '5GiBB', '1e3', '0x10', '5 G B', 'NaN'];
const BAD_DURATIONS = ['30x', 'banana', '1 month', '-5d', '', '30M', '2 weeks', '1e3s', 'Infinity'];

function filesUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name))
    .sort();
}

test('the grammar: the usual forms mean what they say, everything else is refused', (t) => {
  const sizes: [string | number, number][] = [
    ['5G', 5 * GiB],
    ['5GB', 5 * GiB],
    ['5GiB', 5 * GiB],
    ['5g', 5 * GiB],
    ['5 GB', 5 * GiB],
    ['500M', 500 * 2 ** 20],
    ['10k', 10_240],
    ['10KB', 10_240],
    ['10KiB', 10_240],
    ['2T', 2 * 2 ** 40],
    ['1.5G', 1.5 * GiB],
    ['123', 123],
    ['123B', 123],
    ['0', 0],
    [4096, 4096],
  ];
  for (const [raw, n] of sizes) t.is(sizeOf(raw), n, String(raw));
  for (const raw of [...BAD_SIZES, -1, 1.5, Number.NaN, 2 ** 60]) t.is(sizeOf(raw as string), undefined, JSON.stringify(raw));
  const durations: [string | number, number][] = [
    ['30d', 30 * 86_400_000],
    ['12h', 43_200_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['30m', 1_800_000],
    ['2w', 14 * 86_400_000],
    ['1.5h', 5_400_000],
    ['30', 30_000],
    ['0', 0],
    [30, 30_000],
  ];
  for (const [raw, n] of durations) t.is(durationOf(raw), n, String(raw));
  for (const raw of [...BAD_DURATIONS, -1, Number.NaN]) t.is(durationOf(raw as string), undefined, JSON.stringify(raw));
  const e = t.throws(() => parseSize('1zz', 'VRIFT_MAX_LOCAL_SIZE'));
  t.is((e as { code?: string }).code, 'ECONFIG');
  t.regex(e!.message, /^VRIFT_MAX_LOCAL_SIZE: "1zz" is not a size; use .*5GiB/);
  t.regex(t.throws(() => parseDuration('1 month', 'x.toml: max_age'))!.message, /^x\.toml: max_age: "1 month" is not a duration; use .*30d/);
  t.throws(() => parseSize(true, 'k'));
  // What is printed reads back as the same value.
  for (const n of [0, 1, 1000, 1024, 50 * GiB, 1536 * 2 ** 20]) t.is(sizeOf(formatSize(n)), n);
  for (const n of [0, 250, 1000, 1_800_000, 30 * 86_400_000, 90_000]) t.is(durationOf(formatDuration(n)), n);
  t.is(formatSize(50 * GiB), '50GiB');
  t.is(formatDuration(1_800_000), '30m');
});

test('every size and duration key, in config files and the environment, goes through the same grammar', (t) => {
  const dir = tmpDir(t);
  const env = { VRIFT_HOME: path.join(dir, 'home'), HOME: dir };
  fs.mkdirSync(env.VRIFT_HOME);
  const userFile = path.join(env.VRIFT_HOME, 'config.toml');
  const keys = {
    max_local_size: ['VRIFT_MAX_LOCAL_SIZE', 'size'],
    max_age: ['VRIFT_MAX_AGE', 'duration'],
    idle_timeout: ['VRIFT_IDLE_TIMEOUT', 'duration'],
    remote_timeout: ['VRIFT_REMOTE_TIMEOUT', 'duration'],
    remote_wait: ['VRIFT_REMOTE_WAIT', 'duration'],
  } as const;
  for (const [key, [name, kind]] of Object.entries(keys)) {
    const good: [string, number][] =
      kind === 'size'
        ? [
            ['5G', 5 * GiB],
            ['5GiB', 5 * GiB],
            ['500M', 500 * 2 ** 20],
            ['10k', 10_240],
          ]
        : [
            ['30d', 2_592_000_000],
            ['12h', 43_200_000],
            ['90s', 90_000],
            ['500ms', 500],
          ];
    for (const [raw, n] of good) {
      fs.writeFileSync(userFile, `[l2_cache]\n${key} = "${raw}"\n`);
      t.is(loadConfig({ env, cwd: dir }).config[key as 'max_age'], n, `${key} = ${raw}`);
      fs.rmSync(userFile);
      t.is(loadConfig({ env: { ...env, [name]: raw }, cwd: dir }).config[key as 'max_age'], n, `${name}=${raw}`);
    }
    for (const raw of kind === 'size' ? BAD_SIZES : BAD_DURATIONS) {
      fs.writeFileSync(userFile, `[l2_cache]\n${key} = ${JSON.stringify(raw)}\n`);
      const inFile = t.throws(() => loadConfig({ env, cwd: dir }), undefined, `${key} = ${JSON.stringify(raw)}`);
      t.is(inFile!.message.split('\n').length, 1);
      t.true(inFile!.message.startsWith(`${userFile}: ${key}: ${JSON.stringify(raw)} is not a ${kind}; use `), inFile!.message);
      fs.rmSync(userFile);
      if (raw.trim() === '') continue; // an empty variable is an unset one
      const inEnv = t.throws(() => loadConfig({ env: { ...env, [name]: raw }, cwd: dir }), undefined, `${name}=${raw}`);
      t.true(inEnv!.message.startsWith(`${name}: ${JSON.stringify(raw)} is not a ${kind}; use `), inEnv!.message);
    }
    fs.writeFileSync(userFile, `[l2_cache]\n${key} = -5\n`);
    t.throws(() => loadConfig({ env, cwd: dir }), { message: new RegExp(`${key}: -5 is not a ${kind}`) });
    fs.rmSync(userFile);
  }
});

async function populated(t: Parameters<typeof instance>[0]): Promise<{ v: Instance; files: string[] }> {
  const v = instance(t);
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  await v.stored(1);
  const files = filesUnder(path.join(v.home, 'l2'));
  t.true(files.length > 0);
  return { v, files };
}

test('vrift clean refuses a size or age it cannot read, and removes nothing', async (t) => {
  const { v, files } = await populated(t);
  const store = path.join(v.home, 'l2');
  const cases = [...BAD_SIZES.map((x) => ['--max-size', x]), ...BAD_DURATIONS.map((x) => ['--older-than', x]), ['--max-size=-1'], ['--older-than=-5d']];
  for (const args of cases) {
    const r = await v.vrift(['clean', ...args]);
    const what = args.join(' ');
    t.not(r.code, 0, what);
    t.is(r.out, '', what);
    t.is(r.err.trim().split('\n').length, 1, `${what}: ${r.err}`);
    t.notRegex(r.err, /\n\s+at /, what);
    const [flag] = args[0].split('=');
    t.true(r.err.includes(flag), `${what}: ${r.err}`);
    t.regex(r.err, flag === '--max-size' ? /5GiB/ : /30d/, what);
    t.deepEqual(filesUnder(store), files, `${what} removed files`);
  }
  // An environment variable or config key the store command cannot read stops it too.
  for (const [name, raw] of [
    ['VRIFT_MAX_LOCAL_SIZE', '1zz'],
    ['VRIFT_MAX_AGE', '30x'],
  ]) {
    const r = await run(process.execPath, [CLI, 'clean', '--all'], { cwd: v.dir, env: { ...v.env, [name]: raw } });
    t.not(r.code, 0);
    t.regex(r.err, new RegExp(`^vrift clean: ${name}: "${raw}" is not a `));
    t.deepEqual(filesUnder(store), files, `${name}=${raw} removed files`);
  }
});

test('vrift clean reads 5G, 5GiB, 500M and 30d as what they say', async (t) => {
  const { v, files } = await populated(t);
  const store = path.join(v.home, 'l2');
  for (const args of [
    ['--max-size', '5G'],
    ['--max-size', '5GiB'],
    ['--max-size', '5GB'],
    ['--max-size', '500M'],
    ['--older-than', '30d'],
    ['--older-than', '12h'],
  ]) {
    const r = await v.vrift(['clean', ...args]);
    t.is(r.code, 0, r.err);
    t.regex(r.out, /removed 0 files/, args.join(' '));
    t.deepEqual(filesUnder(store), files, args.join(' '));
  }
  const all = await v.vrift(['clean', '--max-size', '0']);
  t.is(all.code, 0, all.err);
  t.is((await v.stats()).local.bytes, 0);
});

test('max_local_size = "5G" in config.toml is 5 GiB for the daemon: the second compile hits', async (t) => {
  const v = instance(t);
  fs.mkdirSync(v.home, { recursive: true });
  fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache]\nmax_local_size = "5G"\nmax_age = "30d"\n');
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  await v.stored(1);
  t.is((await v.cc(['-c', 'a.c', '-o', 'a.o'])).code, 0);
  const s = await v.stats();
  t.is(s.hits, 1);
  t.is((s.local as unknown as { max_size: number }).max_size, 5 * GiB);
});

test('vrift serve: --max-size 50G takes uploads; sizes and ports it cannot read are refused before it listens', async (t) => {
  const dir = tmpDir(t);
  const store = path.join(dir, 'store');
  const s = await startServe(t, ['--store', store, '--max-size', '50G', '--max-blob-size', '1M', '--access-log', 'off']);
  const body = crypto.randomBytes(200_000);
  t.is((await request(`${s.url}/cas/${crypto.createHash('sha256').update(body).digest('hex')}`, { method: 'PUT', body })).status, 200);
  const big = crypto.randomBytes(2 ** 20 + 1);
  t.is((await request(`${s.url}/cas/${crypto.createHash('sha256').update(big).digest('hex')}`, { method: 'PUT', body: big })).status, 413);
  for (const args of [
    ['--port', '0', '--max-size', '1zz'],
    ['--port', '0', '--max-size=-1'],
    ['--port', '0', '--max-blob-size', '0'],
    ['--port', '0', '--max-blob-size', 'lots'],
    ['--port', 'abc'],
    ['--port', ''],
    ['--port', '70000'],
    ['--port', '-1'],
  ]) {
    const r = await run(process.execPath, [CLI, 'serve', '--store', path.join(dir, 'other'), ...args]);
    t.not(r.code, 0, args.join(' '));
    t.is(r.err.trim().split('\n').length, 1, r.err);
    t.true(r.err.includes(args[args.length - 2].split('=')[0]) || r.err.includes(args[args.length - 1].split('=')[0]), r.err);
    t.notRegex(r.err, /listening/);
  }
  t.false(fs.existsSync(path.join(dir, 'other')));
});
