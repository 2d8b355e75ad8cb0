/**
 * Unit-test helpers for verification: freshly generated keys with their witnesses, policies and
 * configs. The in-memory registry lives in test/support/memory-registry.ts (re-exported here).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Policy, SignetConfig, Witness } from '../../lib/config/types';

export {
  MemoryRegistries,
  MemoryRegistry,
  type BeforeHook,
  type FailureHook,
} from '../support/memory-registry';

/** A key pair and the inline-PEM witness of its public half. */
export interface TestKey {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly witness: Witness;
}

export type KeyKind = 'ec-p256' | 'ec-p384' | 'rsa-2048';

export function testKey(name: string, kind: KeyKind = 'ec-p256'): TestKey {
  const pair =
    kind === 'rsa-2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: kind === 'ec-p384' ? 'P-384' : 'P-256' });
  const pem = pair.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    witness: { name, key: { $case: 'publicKeyPem', pem }, description: undefined },
  };
}

/** A policy with defaults a test can override. */
export function policy(overrides: Partial<Policy> & Pick<Policy, 'name' | 'images' | 'attestors'>): Policy {
  return {
    enabled: true,
    clusters: ['*'],
    namespaces: ['*'],
    mode: 'enforce',
    mutateDigest: false,
    failurePolicy: 'deny',
    signedIdentity: { type: 'matchRepository' },
    ...overrides,
  };
}

/** The parts of a config verification reads. */
export function verificationConfig(
  witnesses: readonly Witness[],
  policies: readonly Policy[],
  admission: Partial<SignetConfig['admission']> = {},
): Pick<SignetConfig, 'policies' | 'witnesses' | 'admission'> {
  return {
    witnesses,
    policies,
    admission: {
      noMatchingPolicy: 'deny',
      cacheTtlSeconds: 300,
      cacheMaxEntries: 1000,
      excludeNamespaces: [],
      deadlineMs: 9000,
      maxSignatures: 64,
      maxReviewBytes: 8 * 1024 * 1024,
      ...admission,
    },
  };
}
