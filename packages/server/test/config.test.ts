import t from 'tap';
import { loadConfig, parseToml, type ConfigOutcome, type ServerConfig } from '../src/index.js';

function load(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): ConfigOutcome {
  return loadConfig({
    argv, env, readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file ${path}`);
      return text;
    },
  });
}

function config(outcome: ConfigOutcome): ServerConfig {
  if (outcome.kind !== 'config') throw new Error(`expected a config, got ${JSON.stringify(outcome)}`);
  return outcome.config;
}

function error(outcome: ConfigOutcome): string {
  if (outcome.kind !== 'error') throw new Error(`expected an error, got ${outcome.kind}`);
  return outcome.message;
}

t.test('defaults: single node, ./data, 127.0.0.1:7420, HTTP 127.0.0.1:7421', async (t) => {
  const c = config(load([]));
  t.same(c, {
    dataDir: './data', listen: { host: '127.0.0.1', port: 7420 }, http: { host: '127.0.0.1', port: 7421 },
    clusterId: null, replicaIndex: 0, peers: [], adminKey: null, configFile: null,
  });
});

t.test('precedence: flag > env > file > default, per setting', async (t) => {
  const files = { '/etc/v.toml': 'data_dir = "/file/data"\nlisten = "10.0.0.1:1000"\nhttp = "10.0.0.1:1001"\n' };
  const fileOnly = config(load(['--config', '/etc/v.toml'], {}, files));
  t.equal(fileOnly.dataDir, '/file/data');
  t.same(fileOnly.listen, { host: '10.0.0.1', port: 1000 });
  t.equal(fileOnly.configFile, '/etc/v.toml');

  const env = { VDB_DATA_DIR: '/env/data', VDB_LISTEN: '10.0.0.2:2000' };
  const envOverFile = config(load(['--config', '/etc/v.toml'], env, files));
  t.equal(envOverFile.dataDir, '/env/data', 'env beats file');
  t.same(envOverFile.listen, { host: '10.0.0.2', port: 2000 });
  t.same(envOverFile.http, { host: '10.0.0.1', port: 1001 }, 'file beats default');

  const flagOverEnv = config(load(['--config', '/etc/v.toml', '--data-dir', '/flag/data', '--listen=127.0.0.1:0'], env, files));
  t.equal(flagOverEnv.dataDir, '/flag/data', 'flag beats env');
  t.same(flagOverEnv.listen, { host: '127.0.0.1', port: 0 }, '--flag=value form; port 0 allowed');

  const viaEnvConfig = config(load([], { VDB_CONFIG: '/etc/v.toml' }, files));
  t.equal(viaEnvConfig.dataDir, '/file/data', 'VDB_CONFIG names the file');
  t.equal(config(load([], { VDB_DATA_DIR: '' })).dataDir, './data', 'an empty variable counts as unset');
});

t.test('cluster settings: one peer or a cluster of 3/5, validation is precise', async (t) => {
  const single = config(load(['--peers', '127.0.0.1:7500', '--cluster-id', '0x2a', '--replica-index', '0']));
  t.same(single.peers, [{ host: '127.0.0.1', port: 7500 }]);
  t.same(single.listen, { host: '127.0.0.1', port: 7500 }, 'listen defaults to peers[replica-index]');
  t.equal(single.clusterId, 42n);
  t.equal(config(load([], { VDB_CLUSTER_ID: '340282366920938463463374607431768211455' })).clusterId, (1n << 128n) - 1n);

  const three = '127.0.0.1:7500,127.0.0.1:7501,127.0.0.1:7502';
  t.match(error(load(['--peers', three, '--cluster-id', '7', '--replica-index', '1'])),
    /^--peers: a cluster of 3 replicas needs --admin-key FILE, the admin key every replica shares/);
  const member = config(load(['--peers', three, '--cluster-id', '7', '--replica-index', '1'], { VDB_ADMIN_KEY: '/keys/admin.key' }));
  t.same(member.listen, { host: '127.0.0.1', port: 7501 }, 'a member listens on its own peer address');
  t.equal(member.adminKey, '/keys/admin.key', 'VDB_ADMIN_KEY names the shared key');
  t.match(error(load(['--peers', three, '--replica-index', '1'])), /needs --cluster-id/);
  t.match(error(load(['--peers', three, '--cluster-id', '7'])), /needs --replica-index/);
  t.match(error(load(['--peers', '127.0.0.1:1,127.0.0.1:2'])), /1, 3 or 5 replicas, got 2/);
  t.match(error(load(['--peers', '127.0.0.1:1,127.0.0.1:1,127.0.0.1:2', '--cluster-id', '1'])), /listed twice/);
  t.match(error(load(['--peers', '127.0.0.1:0'])), /needs a real port/);
  t.match(error(load(['--peers', '127.0.0.1:1', '--replica-index', '1'])), /replica index 1 is not below the 1 peers/);
  t.match(error(load(['--replica-index', '2'])), /needs --peers/);
  t.match(error(load(['--replica-index', '9'])), /--replica-index: expected an integer from 0 to 4/);
  t.match(error(load([], { VDB_PEERS: 'nope' })), /^VDB_PEERS: "nope" is not HOST:PORT/);
  for (const bad of ['0', '-1', 'x', '0x', '1.5', `${1n << 128n}`, '0x1ffffffffffffffffffffffffffffffff']) {
    t.match(error(load(['--cluster-id', bad])), /^--cluster-id: a cluster id is an integer from 1 to 2\^128-1/, bad);
  }
});

t.test('command-line errors name the flag', async (t) => {
  t.match(error(load(['--listen'])), '--listen needs a value');
  t.match(error(load(['--listen', '--http', '1.2.3.4:5'])), '--listen needs a value');
  t.match(error(load(['--bogus', 'x'])), 'unknown option --bogus');
  t.match(error(load(['stray'])), 'unexpected argument "stray"');
  t.match(error(load(['--listen', 'a:1', '--listen', 'b:2'])), '--listen is given twice');
  t.match(error(load(['--listen', 'localhost'])), /^--listen: "localhost" is not HOST:PORT \(a port is required\)/);
  t.match(error(load(['--http', '127.0.0.1:70000'])), /^--http: port 70000 is above 65535/);
  t.match(error(load(['--listen', '127.0.0.1:9', '--http', '127.0.0.1:9'])), 'both use 127.0.0.1:9');
  t.match(error(load(['--config', '/missing.toml'])), /^cannot read config file \/missing.toml/);
  t.match(error(load(['--data-dir='])), '--data-dir needs a non-empty value');
  t.equal(load(['--help']).kind, 'help');
});

t.test('config file errors carry the file and line', async (t) => {
  const at = (text: string): string => error(load(['--config', 'c.toml'], {}, { 'c.toml': text }));
  t.equal(at('listen = "127.0.0.1:1"\nbogus = 1\n'), 'c.toml:2: unknown key "bogus" (known: data_dir, listen, http, cluster_id, replica_index, peers, admin_key)');
  t.equal(at('\n\nlisten = 7420\n'), 'c.toml:3: expected HOST:PORT as a non-empty string');
  t.equal(at('replica_index = "x"\n'), 'c.toml:1: expected an integer from 0 to 4, got "x"');
  t.match(at('[server]\n'), /^c\.toml:1: tables/);
  t.equal(config(load(['--config', 'c.toml'], {}, { 'c.toml': 'peers = ["127.0.0.1:7500"]\nreplica_index = 0\ncluster_id = "0xff"\n' })).clusterId, 255n);
  t.equal(config(load(['--config', 'c.toml'], {}, { 'c.toml': 'cluster_id = 12\n' })).clusterId, 12n);
});

t.test('TOML subset: what parses and what is refused, with line numbers', async (t) => {
  const ok = parseToml([
    '# comment', '', 'a = "x\\ty\\u00e9\\"q\\\\"  # trailing comment', "b = 'C:\\raw'", 'c = -1_000', 'd = ["p:1", \'q:2\' ,]', 'e = []',
    '  f\t=\t0',
  ].join('\n'));
  if (!ok.ok) throw new Error(ok.message);
  t.same([...ok.values].map(([k, v]) => [k, v.value, v.line]), [
    ['a', 'x\ty\u00e9"q\\', 3], ['b', 'C:\\raw', 4], ['c', -1000n, 5], ['d', ['p:1', 'q:2'], 6], ['e', [], 7], ['f', 0n, 8],
  ]);
  const refused: [string, number, RegExp][] = [
    ['a = 1\na = 2', 2, /already set on line 1/],
    ['a.b = 1', 1, /not a bare key/],
    ['"a" = 1', 1, /not a bare key/],
    ['a = 1.5', 1, /not a string or a decimal integer/],
    ['a = true', 1, /booleans are not supported/],
    ['a = 0x10', 1, /not a string or a decimal integer/],
    ['a = 01', 1, /not a string or a decimal integer/],
    ['a = "x', 1, /unterminated string/],
    ['a = """x"""', 1, /multi-line strings/],
    ['a = "\\q"', 1, /unknown escape/],
    ['a = "\\ud800"', 1, /not a Unicode scalar value/],
    ['a = [1]', 1, /arrays may hold only strings/],
    ['a = ["x"', 1, /unterminated array/],
    ['a = "x" y', 1, /unexpected "y"/],
    ['a =', 1, /missing value/],
    ['a', 1, /expected "=" after "a"/],
    ['ok = 1\n[t]', 2, /tables/],
    ['a = "\u0001"', 1, /control characters/],
  ];
  for (const [text, line, message] of refused) {
    const parsed = parseToml(text);
    t.equal(parsed.ok, false, JSON.stringify(text));
    if (!parsed.ok) {
      t.equal(parsed.line, line, `line of ${JSON.stringify(text)}`);
      t.match(parsed.message, message);
    }
  }
});
