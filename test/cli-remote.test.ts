import fs from 'node:fs';
import path from 'node:path';
import test from './helpers/test.js';
import { age, CLI, instance, run } from './helpers/instance.js';
import { fakeServer } from './helpers/remote.js';

type RemoteStats = { daemon: { pid: number }; remote?: { url: string; identity: string; last_error?: string; errors: number } };

test('a remote URL that is not one is refused where it is given: flag, variable, config key', async (t) => {
  const v = instance(t);
  for (const bad of ['garbage', 'http://', 'ftp://host/x', 's3:/bucket', 'http://host/x?y=1', '']) {
    const r = await v.vrift(['run', '--cache-remote', bad, '--', 'true']);
    t.is(r.code, 2, bad);
    t.is(r.err.trim().split('\n').length, 1, r.err);
    t.true(r.err.includes('--cache-remote') && r.err.includes(`'${bad}'`) && r.err.includes('s3://bucket'), r.err);
  }
  const env = await run(process.execPath, [CLI, 'config'], { env: { ...v.env, VRIFT_REMOTE: 'garbage' } });
  t.is(env.code, 2);
  t.regex(env.err, /^vrift: VRIFT_REMOTE: "garbage" is not a remote URL \(not a URL\); use http\(s\):\/\//);
  fs.mkdirSync(v.home, { recursive: true });
  fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache]\nremote_url = "ftp://host/x"\n');
  const file = await v.vrift(['config']);
  t.is(file.code, 2);
  t.true(file.err.includes(`${path.join(v.home, 'config.toml')}: remote_url: "ftp://host/x" is not a remote URL (unsupported scheme ftp:)`), file.err);
  // A password in the URL is never printed.
  fs.writeFileSync(path.join(v.home, 'config.toml'), '[l2_cache]\nremote_url = "http://ci:s3cret-pw@127.0.0.1:9/x"\n');
  const shown = await v.vrift(['config']);
  t.is(shown.code, 0, shown.err);
  t.notRegex(shown.out, /s3cret-pw/);
  t.regex(shown.out, /remote_url = "http:\/\/127\.0\.0\.1:9\/x"/);
});

test('only the password changed: the daemon is restarted with it; stats show the failing HTTP status; no password printed', async (t) => {
  const server = await fakeServer(t, (req, res) => {
    const auth = req.headers.authorization ?? '';
    const pw = auth.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString().split(':')[1] : '';
    req.resume();
    if (pw !== 'right-pw') {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
      return;
    }
    res.writeHead(req.method === 'PUT' ? 200 : 404).end();
  });
  const port = new URL(server.url).port;
  const url = (pw: string) => `http://ci:${pw}@127.0.0.1:${port}/team`;
  const v = instance(t, { VRIFT_REMOTE_WAIT: '5s' });
  age(v.write('a.c', 'int a(void) { return 1; }\n'));
  const first = await v.vrift(['run', '--cache-remote', url('wrong-pw'), '--', 'gcc', '-c', 'a.c', '-o', 'a.o']);
  t.is(first.code, 0, first.err);
  const failing = (await v.until((s) => !!(s as unknown as RemoteStats).remote?.last_error)) as unknown as RemoteStats;
  t.regex(failing.remote!.last_error!, /HTTP 401/);
  t.is(failing.remote!.url, `http://127.0.0.1:${port}/team`);
  const human = await v.vrift(['stats']);
  t.regex(human.out, /last failure .*HTTP 401/);
  t.notRegex(human.out + JSON.stringify(failing), /wrong-pw/);

  const again = await v.vrift(['run', '-q', '--cache-remote', url('wrong-pw'), '--', 'true']);
  t.is(again.err, '', 'the same URL and password: nothing to do');
  const fixed = await v.vrift(['run', '-q', '--cache-remote', url('right-pw'), '--', 'true']);
  t.is(fixed.code, 0, fixed.err);
  t.regex(fixed.err, /restarted the daemon to use remote http:\/\/127\.0\.0\.1:\d+\/team with other credentials/);
  t.notRegex(fixed.err, /pw/);
  const after = (await v.stats()) as unknown as RemoteStats;
  t.not(after.daemon.pid, failing.daemon.pid);
  t.not(after.remote!.identity, failing.remote!.identity);
  t.is(after.remote!.last_error, undefined);
});
