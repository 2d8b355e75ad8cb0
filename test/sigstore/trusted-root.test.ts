import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../../lib/core/errors';
import { loadTrustedRoot, parseTrustedRoot } from '../../lib/sigstore/trusted-root';

const CONFORMANCE = join(__dirname, '../fixtures/sigstore/conformance');
const PRIVATE_ROOT = join(CONFORMANCE, 'trusted_root.private.json');

const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('nothing thrown');
};

describe('loadTrustedRoot', () => {
  describe('public-good', () => {
    it('loads the root @sigstore/tuf embeds, offline', () => {
      const root = loadTrustedRoot('public-good');
      expect(root.source).toBe('public-good');
      expect(root.material.tlogs.map((t) => t.baseURL)).toContain('https://rekor.sigstore.dev');
      expect(root.material.certificateAuthorities.length).toBeGreaterThan(0);
      expect(root.material.ctlogs.length).toBeGreaterThan(0);
    });

    it('is read once', () => {
      expect(loadTrustedRoot('public-good')).toBe(loadTrustedRoot('public-good'));
    });
  });

  describe('from a file', () => {
    it('reads a path, a file:// URI, or a path relative to baseDir', () => {
      expect(loadTrustedRoot({ file: PRIVATE_ROOT }).material.tlogs).toHaveLength(1);
      expect(loadTrustedRoot({ file: pathToFileURL(PRIVATE_ROOT).href }).source).toBe(PRIVATE_ROOT);
      expect(loadTrustedRoot({ file: 'trusted_root.private.json' }, CONFORMANCE).source).toBe(PRIVATE_ROOT);
    });

    it('fails with CONFIG_UNREADABLE when the file is missing', () => {
      expect(() => loadTrustedRoot({ file: join(CONFORMANCE, 'absent.json') })).toThrowWithCode(
        ConfigError,
        'CONFIG_UNREADABLE',
      );
    });

    it('fails with CONFIG_INVALID when the file is not JSON', () => {
      const dir = mkdtempSync(join(tmpdir(), 'signet-root-'));
      writeFileSync(join(dir, 'root.json'), '{not json');
      expect(() => loadTrustedRoot({ file: join(dir, 'root.json') })).toThrowWithCode(
        ConfigError,
        'CONFIG_INVALID',
      );
    });
  });
});

describe('parseTrustedRoot', () => {
  describe('when several fields are wrong', () => {
    it('lists every one of them at once', () => {
      const root = JSON.parse(readFileSync(PRIVATE_ROOT, 'utf8'));
      root.mediaType = 'application/json';
      root.certificateAuthorities[0].certChain.certificates[0].rawBytes = 'bm90IGEgY2VydA==';
      root.tlogs[0].logId.keyId = '';
      root.ctlogs[0].publicKey = {};
      const err = thrown(() => parseTrustedRoot(root, 'edited'));
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).code).toBe('CONFIG_INVALID');
      expect((err as ConfigError).issues.map((i) => i.path)).toEqual([
        'mediaType',
        'certificateAuthorities[0].certChain.certificates[0].rawBytes',
        'tlogs[0].logId.keyId',
        'ctlogs[0].publicKey.rawBytes',
      ]);
    });
  });

  it('rejects what is not an object', () => {
    expect(() => parseTrustedRoot([], 'array')).toThrowWithCode(ConfigError, 'CONFIG_INVALID');
  });
});
