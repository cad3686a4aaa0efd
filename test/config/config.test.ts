import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { ValidateFunction } from 'ajv';
import {
  ConfigError, configSchemaText, envOverrides, loadAjv, loadConfig, merge, packageRoot, renameOldKeys, schemaHash, validateConfig, type Json,
} from '../../src/config/config.js';
import { configValidatorCode } from '../../src/config/config-validator-code.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '..', 'fixtures', 'config');
const root = join(here, '..', '..');

function defaults(): Json {
  return JSON.parse(readFileSync(join(root, 'config', 'default.json'), 'utf8')) as Json;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    expect((e as Error).name).to.equal('ConfigError');
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config', () => {
  it('finds the package root', () => {
    expect(packageRoot()).to.equal(root);
  });

  describe('defaults', () => {
    it('config/default.json validates as it is', () => {
      const c = validateConfig(defaults());
      expect(c.sip.port).to.equal(5060);
      expect(c.sip.hosts).to.deep.equal(['0.0.0.0', '::']);
      expect(c.sip.transports).to.deep.equal(['udp', 'tcp']);
      expect(c.log.level).to.equal('info');
    });

    it('loadConfig with an empty environment gives the defaults', () => {
      const c = loadConfig({ env: {} });
      expect(c).to.deep.equal(defaults());
    });

    it('loadConfig does not read process.env when env is given', () => {
      const saved = process.env.SIP_PORT;
      process.env.SIP_PORT = 'not-a-number';
      try {
        expect(loadConfig({ env: {} }).sip.port).to.equal(5060);
      } finally {
        if (saved === undefined) delete process.env.SIP_PORT;
        else process.env.SIP_PORT = saved;
      }
    });
  });

  describe('environment', () => {
    it('puts each variable in its key', () => {
      const c = loadConfig({
        env: {
          SIP_HOST: '192.0.2.1, 2001:db8::1 ,,',
          SIP_PORT: '5080',
          SIP_DOMAIN: 'example.com',
          SIP_TLS_PORT: '5081',
          HTTP_PORT: '9090',
          DATABASE_URL: 'postgres://u:p@db.example.com/presence',
          DATA_DIR: '/var/lib/presence',
          LOG_LEVEL: 'warn',
        },
      });
      expect(c.sip.hosts).to.deep.equal(['192.0.2.1', '2001:db8::1']);
      expect(c.sip.port).to.equal(5080);
      expect(c.sip.domain).to.equal('example.com');
      expect(c.tls.port).to.equal(5081);
      expect(c.http.port).to.equal(9090);
      expect(c.http.host).to.equal('0.0.0.0');
      expect(c.store.url).to.equal('postgres://u:p@db.example.com/presence');
      expect(c.store.dataDir).to.equal('/var/lib/presence');
      expect(c.store.flushWindowMs).to.equal(1000);
      expect(c.log.level).to.equal('warn');
      // untouched siblings keep their defaults
      expect(c.sip.transports).to.deep.equal(['udp', 'tcp']);
      expect(c.sip.timers).to.deep.equal({ t1: 500, t2: 4000, t4: 5000 });
    });

    it('envOverrides builds only the sections it is given', () => {
      expect(envOverrides({})).to.deep.equal({});
      expect(envOverrides({ SIP_PORT: '1', UNRELATED: 'x' })).to.deep.equal({ sip: { port: 1 } });
      expect(envOverrides({ SIP_HOST: 'a' })).to.deep.equal({ sip: { hosts: ['a'] } });
      expect(envOverrides({ HTTP_PORT: ' 8081 ' })).to.deep.equal({ http: { port: 8081 } });
      expect(envOverrides({ SIP_PORT: '' })).to.deep.equal({});
    });

    it('refuses a bad number, naming the variable', () => {
      for (const [name, value] of [
        ['SIP_PORT', 'abc'],
        ['SIP_PORT', '-1'],
        ['SIP_PORT', '5060.5'],
        ['SIP_PORT', '0x10'],
        ['HTTP_PORT', '80a'],
        ['SIP_TLS_PORT', 'five'],
      ] as const) {
        const e = configError(() => loadConfig({ env: { [name]: value } }));
        expect(e.message, `${name}=${value}`).to.contain(name);
      }
    });

    it('refuses a whole number outside the schema, naming the key', () => {
      expect(configError(() => loadConfig({ env: { SIP_PORT: '70000' } })).message).to.contain('"sip.port"');
      expect(configError(() => loadConfig({ env: { HTTP_PORT: '65536' } })).message).to.contain('"http.port"');
    });

    it('refuses an unknown log level, naming the key', () => {
      expect(configError(() => loadConfig({ env: { LOG_LEVEL: 'verbose' } })).message).to.contain('"log.level"');
    });

    it('refuses a bad domain from the environment', () => {
      expect(configError(() => loadConfig({ env: { SIP_DOMAIN: 'bad domain!' } })).message).to.contain('"sip.domain"');
    });
  });

  describe('--config file', () => {
    it('is merged over the defaults, key by key', () => {
      const c = loadConfig({ file: join(fixtures, 'override.json'), env: {} });
      expect(c.sip.port).to.equal(5070);
      expect(c.sip.domain).to.equal('file.example.com');
      expect(c.sip.transports).to.deep.equal(['tcp']);
      expect(c.sip.timers).to.deep.equal({ t1: 250, t2: 4000, t4: 5000 });
      expect(c.sip.hosts).to.deep.equal(['0.0.0.0', '::']);
      expect(c.presence.defaultPolicy).to.equal('confirm');
      expect(c.presence.publishMaxExpires).to.equal(3600);
      expect(c.log.level).to.equal('debug');
    });

    it('is overridden by the environment, which is overridden by overrides', () => {
      const c = loadConfig({
        file: join(fixtures, 'override.json'),
        env: { SIP_PORT: '6000', LOG_LEVEL: 'error' },
        overrides: { log: { level: 'silent' } },
      });
      expect(c.sip.port).to.equal(6000);
      expect(c.sip.domain).to.equal('file.example.com');
      expect(c.log.level).to.equal('silent');
    });

    it('reads a renamed key under its new name, with a warning, unless the new one is set too', async () => {
      const warnings: string[] = [];
      const onWarning = (w: Error): void => {
        warnings.push(w.message);
      };
      process.on('warning', onWarning);
      try {
        const renamed = renameOldKeys({ auth: { maxFailuresPerSource: 7, blockSeconds: 60 } }, 'old.json');
        expect(renamed).to.deep.equal({ auth: { maxFailuresPerSourceUser: 7, blockSeconds: 60 } });
        expect(validateConfig(merge(defaults(), renamed)).auth.maxFailuresPerSourceUser).to.equal(7);
        expect(renameOldKeys({ auth: { maxFailuresPerSource: 7, maxFailuresPerSourceUser: 3 } }, 'both.json')).to.deep.equal({ auth: { maxFailuresPerSourceUser: 3 } });
        expect(renameOldKeys({ sip: { port: 5070 } }, 'new.json')).to.deep.equal({ sip: { port: 5070 } });
      } finally {
        await new Promise((r) => setImmediate(r));
        process.off('warning', onWarning);
      }
      expect(warnings).to.have.length(2);
      expect(warnings[0]).to.contain('old.json: "auth.maxFailuresPerSource" is now "auth.maxFailuresPerSourceUser"');
    });

    it('refuses a file with an unknown key, naming it', () => {
      const e = configError(() => loadConfig({ file: join(fixtures, 'unknown-key.json'), env: {} }));
      expect(e.message).to.contain('unknown key "registrar.maximumExpires"');
    });

    it('refuses a file with a bad value, naming the key', () => {
      const e = configError(() => loadConfig({ file: join(fixtures, 'bad-value.json'), env: {} }));
      expect(e.message).to.contain('"limits.maxMessageSize"');
    });

    it('refuses a missing file and a file that is not JSON, naming the file', () => {
      const missing = join(fixtures, 'does-not-exist.json');
      expect(configError(() => loadConfig({ file: missing, env: {} })).message).to.contain(missing);
      const notJson = join(fixtures, 'not-json.json');
      const e = configError(() => loadConfig({ file: notJson, env: {} }));
      expect(e.message).to.contain(notJson);
      expect(e.message).to.contain('not valid JSON');
    });
  });

  describe('validation', () => {
    it('the validator the build writes as code gives the compiled schema\'s verdicts and errors, and names the schema it was made from', () => {
      const text = configSchemaText();
      const module = { exports: {} as ValidateFunction & { schemaHash?: string } };
      new Function('module', 'exports', 'require', configValidatorCode(text))(module, module.exports, createRequire(import.meta.url));
      const built = module.exports;
      expect(built.schemaHash).to.equal(schemaHash(text));
      const compiled = new (loadAjv())({ allErrors: true, strict: true }).compile(JSON.parse(text) as Record<string, unknown>);
      const d = defaults() as Record<string, Json>;
      const inputs: Json[] = [d, { ...d, bogus: 1 }, { ...d, sip: { ...(d.sip as Record<string, Json>), port: 'x', timers: { t9: 1 } } }, {}, []];
      for (const input of inputs) {
        expect(built(input)).to.equal(compiled(input));
        expect(built.errors ?? null).to.deep.equal(compiled.errors ?? null);
      }
    });

    it('names an unknown key at the top level and nested', () => {
      expect(configError(() => loadConfig({ env: {}, overrides: { bogus: 1 } })).message).to.contain('unknown key "bogus"');
      expect(configError(() => loadConfig({ env: {}, overrides: { sip: { bogus: true } } })).message).to.contain('unknown key "sip.bogus"');
      expect(configError(() => loadConfig({ env: {}, overrides: { sip: { timers: { t9: 1 } } } })).message).to.contain('unknown key "sip.timers.t9"');
    });

    it('names a bad value with its dotted path', () => {
      const cases: Array<[Json, string]> = [
        [{ sip: { port: 'x' } }, '"sip.port"'],
        [{ sip: { port: 65536 } }, '"sip.port"'],
        [{ sip: { port: 5060.5 } }, '"sip.port"'],
        [{ sip: { hosts: [] } }, '"sip.hosts"'],
        [{ sip: { hosts: [''] } }, '"sip.hosts.0"'],
        [{ sip: { transports: ['udp', 'udp'] } }, '"sip.transports"'],
        [{ sip: { transports: ['sctp'] } }, '"sip.transports.0"'],
        [{ sip: { timers: { t1: 0 } } }, '"sip.timers.t1"'],
        [{ limits: { maxMessageSize: 2_000_000 } }, '"limits.maxMessageSize"'],
        [{ presence: { defaultPolicy: 'closed' } }, '"presence.defaultPolicy"'],
        [{ messaging: { maxUdpMessageSize: 100 } }, '"messaging.maxUdpMessageSize"'],
        [{ store: { dataDir: '' } }, '"store.dataDir"'],
        [{ store: { flushWindowMs: 5 } }, '"store.flushWindowMs"'],
        [{ tls: { cert: 5 } }, '"tls.cert"'],
      ];
      for (const [overrides, key] of cases) {
        const e = configError(() => loadConfig({ env: {}, overrides }));
        expect(e.message, JSON.stringify(overrides)).to.contain(key);
        expect(e.message).to.match(/^invalid configuration: /);
      }
    });

    it('reports every problem at once', () => {
      const e = configError(() => loadConfig({ env: {}, overrides: { sip: { port: -1, domain: '' }, log: { level: 'loud' } } }));
      expect(e.message).to.contain('"sip.port"');
      expect(e.message).to.contain('"sip.domain"');
      expect(e.message).to.contain('"log.level"');
    });

    it('refuses a missing required section or key', () => {
      const d = defaults() as Record<string, Json>;
      const { limits: _l, ...noLimits } = d;
      expect(configError(() => validateConfig(noLimits)).message).to.contain('limits');
      const sip = { ...(d.sip as Record<string, Json>) };
      delete sip.domain;
      expect(configError(() => validateConfig({ ...d, sip })).message).to.contain('domain');
    });

    it('refuses a section replaced by null', () => {
      expect(configError(() => loadConfig({ env: {}, overrides: { presence: null } })).message).to.contain('"presence"');
    });

    it('refuses min above max', () => {
      const pub = configError(() => loadConfig({ env: {}, overrides: { presence: { publishMinExpires: 4000 } } }));
      expect(pub.message).to.contain('presence.publishMinExpires');
      const sub = configError(() => loadConfig({ env: {}, overrides: { presence: { subscribeMinExpires: 10, subscribeMaxExpires: 5 } } }));
      expect(sub.message).to.contain('presence.subscribeMinExpires');
      const reg = configError(() => loadConfig({ env: {}, overrides: { registrar: { minExpires: 7200 } } }));
      expect(reg.message).to.contain('registrar.minExpires');
    });

    it('accepts min equal to max', () => {
      const c = loadConfig({ env: {}, overrides: { presence: { publishMinExpires: 3600 }, registrar: { minExpires: 3600 } } });
      expect(c.presence.publishMinExpires).to.equal(3600);
      expect(c.registrar.minExpires).to.equal(3600);
    });

    it('throws only ConfigError for a schema-valid config without optional sections', () => {
      // The schema requires only sip, limits and log; the cross-field checks must not
      // trip over the optional presence/registrar sections being absent.
      const d = defaults() as Record<string, Json>;
      const minimal: Json = { sip: d.sip!, limits: d.limits!, log: d.log! };
      try {
        validateConfig(minimal);
      } catch (e) {
        expect(e, String(e)).to.be.instanceOf(ConfigError);
      }
    });
  });

  describe('merge', () => {
    it('merges objects deeply, replacing arrays and scalars', () => {
      const base: Json = { a: { b: 1, c: [1, 2], d: { e: 'x' } }, f: 1 };
      const over: Json = { a: { c: [3], d: { g: true } }, h: null };
      expect(merge(base, over)).to.deep.equal({ a: { b: 1, c: [3], d: { e: 'x', g: true } }, f: 1, h: null });
      expect(base).to.deep.equal({ a: { b: 1, c: [1, 2], d: { e: 'x' } }, f: 1 });
    });

    it('lets a non-object replace an object and the reverse', () => {
      expect(merge({ a: { b: 1 } }, { a: null })).to.deep.equal({ a: null });
      expect(merge({ a: 1 }, { a: { b: 1 } })).to.deep.equal({ a: { b: 1 } });
      expect(merge([1, 2], [3])).to.deep.equal([3]);
      expect(merge({ a: 1 }, 'x')).to.equal('x');
    });
  });
});
