/**
 * The Lambda configuration cache: read once, looked at again after the TTL, rebuilt only when the
 * parameter's version changes, and the last good configuration kept when a refresh fails.
 * The SSM client here is a stand-in that answers GetParameter from memory (no network).
 */
import type { GetParameterCommand } from '@aws-sdk/client-ssm';
import { ParameterConfig } from '../../functions/config';
import { ConfigError } from '../../lib/core/errors';
import { silentLogger } from '../../lib/core/logger';

const VALID = (namespace: string) => `
witnesses:
  - name: release
    key: awskms:///alias/signet-release
signingRules:
  - name: rule
    namespaces: [${namespace}]
    witness: release
    algorithm: ECDSA_SHA_256
`;

class ParameterStore {
  value = VALID('team-a');
  version = 1;
  reads = 0;
  failing = false;

  async send(
    command: GetParameterCommand,
  ): Promise<{ Parameter: { Name: string; Value: string; Version: number } }> {
    this.reads++;
    if (this.failing) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    return { Parameter: { Name: command.input.Name as string, Value: this.value, Version: this.version } };
  }

  put(value: string): void {
    this.value = value;
    this.version++;
  }
}

function setup(ttlSeconds = 60) {
  const store = new ParameterStore();
  let now = 1_000_000;
  const built: string[] = [];
  const config = new ParameterConfig({
    parameterName: '/signet/config',
    ttlSeconds,
    ssm: store as never,
    logger: silentLogger,
    baseDir: '/var/task',
    env: { AWS_REGION: 'us-east-1' },
    now: () => now,
    build: (c) => {
      built.push(c.signingRules[0]?.namespaces[0] ?? '');
      return { namespaces: c.signingRules[0]?.namespaces };
    },
  });
  return { store, config, built, advance: (seconds: number) => (now += seconds * 1000) };
}

describe('ParameterConfig', () => {
  it('reads the parameter once within the TTL', async () => {
    const { store, config, built } = setup();
    const [a, b] = await Promise.all([config.get(), config.get()]);
    await config.get();
    expect(a).toBe(b);
    expect(store.reads).toBe(1);
    expect(built).toEqual(['team-a']);
    expect(a.version).toBe(1);
  });

  describe('when the TTL has passed', () => {
    it('keeps what it built while the version is the same', async () => {
      const { store, config, built, advance } = setup();
      const first = await config.get();
      advance(61);
      expect(await config.get()).toBe(first);
      expect(store.reads).toBe(2);
      expect(built).toEqual(['team-a']);
    });

    it('rebuilds from a new version', async () => {
      const { store, config, built, advance } = setup();
      await config.get();
      store.put(VALID('team-b'));
      advance(30);
      expect((await config.get()).version).toBe(1);
      advance(31);
      const next = await config.get();
      expect(next.version).toBe(2);
      expect(built).toEqual(['team-a', 'team-b']);
    });

    it('keeps the last good configuration when the new version is invalid', async () => {
      const { store, config, advance } = setup();
      const first = await config.get();
      store.put('signingRules: [{name: x}]');
      advance(61);
      expect(await config.get()).toBe(first);
    });

    it('keeps the last good configuration when SSM fails, and asks again after another TTL', async () => {
      const { store, config, advance } = setup();
      const first = await config.get();
      store.failing = true;
      advance(61);
      expect(await config.get()).toBe(first);
      expect(await config.get()).toBe(first);
      expect(store.reads).toBe(2);
      store.failing = false;
      store.put(VALID('team-c'));
      advance(61);
      expect((await config.get()).version).toBe(2);
    });
  });

  describe('when the first read fails', () => {
    it('throws CONFIG_UNREADABLE and reads again on the next call', async () => {
      const { store, config } = setup();
      store.failing = true;
      await expect(config.get()).toThrowWithCode(ConfigError, 'CONFIG_UNREADABLE');
      store.failing = false;
      expect((await config.get()).version).toBe(1);
    });

    it('throws the configuration error of an invalid first version', async () => {
      const { store, config } = setup();
      store.value = 'witnesses: 3';
      await expect(config.get()).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
      await expect(config.get()).rejects.toThrow(
        /^SSM parameter \/signet\/config: the configuration is invalid/,
      );
    });
  });

  it('checks on every call with a TTL of 0', async () => {
    const { store, config } = setup(0);
    await config.get();
    await config.get();
    expect(store.reads).toBe(2);
  });
});
