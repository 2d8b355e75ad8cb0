import { access } from 'node:fs/promises';
import type { SignetConfig, SigningAlgorithm } from '../config/types';
import { ConfigError } from '../core/errors';
import type { Logger } from '../core/logger';
import { generateKeyFile, type KeySpec } from './generate';

/** A local key created because it did not exist yet. */
export interface CreatedKey {
  readonly witness: string;
  readonly path: string;
  readonly spec: KeySpec;
  readonly keyId: string;
}

const SPEC_FOR: Record<SigningAlgorithm, KeySpec> = {
  RSASSA_PKCS1_V1_5_SHA_256: 'rsa-2048',
  RSASSA_PSS_SHA_256: 'rsa-2048',
  ECDSA_SHA_256: 'ec-p256',
  ECDSA_SHA_384: 'ec-p384',
};

/**
 * Creates the missing private key of every local (`file://`) witness, of the kind its signing
 * rules need (RSA 2048 for RSA algorithms, P-256 or P-384 for ECDSA). A witness no rule uses gets
 * P-256. Rules that need different kinds of key from one witness are a config error.
 */
export async function ensureLocalKeys(config: SignetConfig, logger: Logger): Promise<CreatedKey[]> {
  const created: CreatedKey[] = [];
  for (const witness of config.witnesses) {
    if (witness.key.$case !== 'file') continue;
    const path = witness.key.path;
    if (await exists(path)) continue;
    const specs = new Set(
      config.signingRules
        .filter((rule) => rule.witness === witness.name)
        .map((rule) => SPEC_FOR[rule.algorithm]),
    );
    const family = new Set([...specs].map((spec) => spec.split('-')[0]));
    if (family.size > 1 || (family.has('ec') && specs.size > 1)) {
      throw new ConfigError(
        'ALGORITHM_MISMATCH',
        `witness "${witness.name}": its rules need keys of different kinds (${[...specs].join(', ')}); one key cannot serve them all`,
      );
    }
    const spec = [...specs][0] ?? 'ec-p256';
    const keyId = await generateKeyFile(path, spec);
    logger.info('local key created', { witness: witness.name, path, spec, keyId });
    created.push({ witness: witness.name, path, spec, keyId });
  }
  return created;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
