/** The rules the AWS edges (sign Lambda, `signet replay`) run: KMS witnesses only. */
import { kmsSigningOnly } from '../../lib/config/kms-only';
import { parseConfig } from '../../lib/config/load';

describe('kmsSigningOnly', () => {
  it('keeps the rules whose witness is a KMS key and names the others', () => {
    const config = parseConfig(
      `
witnesses:
  - name: kms
    key: awskms:///alias/signet-release
  - name: laptop
    key: file://keys/laptop.pem
signingRules:
  - name: in-aws
    namespaces: [a]
    witness: kms
    algorithm: ECDSA_SHA_256
  - name: local
    namespaces: [b]
    witness: laptop
    algorithm: ECDSA_SHA_256
`,
      { baseDir: '/tmp', env: { AWS_REGION: 'us-east-1' } },
    );
    const { config: runnable, unusable } = kmsSigningOnly(config);
    expect(runnable.signingRules.map((r) => r.name)).toEqual(['in-aws']);
    expect(unusable).toEqual([
      { rule: 'local', witness: 'laptop', reason: expect.stringContaining('file key') },
    ]);
    expect(runnable.witnesses).toBe(config.witnesses);
  });
});
