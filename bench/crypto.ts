/**
 * Per-signature crypto cost, Signet against bare node:crypto, for each signing algorithm on the
 * key Signet generates for it (`signet keys generate`: RSA 2048, EC P-256, EC P-384).
 *
 * - sign: Signet's local signer (`localSigner`, async on the libuv pool, as the pipeline calls it)
 *   against `crypto.sign` with a callback (the same pool) and synchronous `crypto.sign`.
 * - verify: `verifySignature` (the check behind every witness) against `crypto.verify` with the
 *   exact padding/salt; and a whole witness check (`checkWitness` through a KeyRing), which tries
 *   every algorithm that fits the key in turn.
 */
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  sign,
  verify,
  type KeyObject,
  type SignKeyObjectInput,
} from 'node:crypto';
import type { SigningAlgorithm } from '../lib/config/types';
import { ALGORITHMS, keyIdOf, spkiPem, verifySignature } from '../lib/keys/algorithms';
import { localSigner } from '../lib/keys/file-key';
import { KeyRing } from '../lib/keys/keyring';
import type { LoadedSignatures } from '../lib/verification/signatures';
import { checkWitness } from '../lib/verification/witness-check';
import { msSince } from './stats';

/** Microseconds per operation, each the median of several batches. */
export interface CryptoFigures {
  readonly algorithm: SigningAlgorithm;
  readonly key: string;
  readonly signetSignUs: number;
  readonly bareSignAsyncUs: number;
  readonly bareSignSyncUs: number;
  readonly signetVerifyUs: number;
  readonly bareVerifyUs: number;
  readonly witnessCheckUs: number;
}

const CASES: readonly { algorithm: SigningAlgorithm; key: string; make: () => KeyObject }[] = [
  { algorithm: 'RSASSA_PKCS1_V1_5_SHA_256', key: 'RSA 2048', make: () => rsa(2048) },
  { algorithm: 'RSASSA_PSS_SHA_256', key: 'RSA 2048', make: () => rsa(2048) },
  { algorithm: 'ECDSA_SHA_256', key: 'EC P-256', make: () => ec('P-256') },
  { algorithm: 'ECDSA_SHA_384', key: 'EC P-384', make: () => ec('P-384') },
];

const rsa = (bits: number): KeyObject => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
const ec = (curve: string): KeyObject => generateKeyPairSync('ec', { namedCurve: curve }).privateKey;

/** The bare options for each algorithm, written out here rather than taken from Signet. */
function bareOptions(algorithm: SigningAlgorithm, key: KeyObject): SignKeyObjectInput {
  switch (algorithm) {
    case 'RSASSA_PKCS1_V1_5_SHA_256':
      return { key, padding: constants.RSA_PKCS1_PADDING };
    case 'RSASSA_PSS_SHA_256':
      return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
    case 'ECDSA_SHA_256':
    case 'ECDSA_SHA_384':
      return { key, dsaEncoding: 'der' };
  }
}

/** µs per call of `op`, the median over `batches` batches of `perBatch` sequential calls. */
async function perOp(batches: number, perBatch: number, op: () => unknown): Promise<number> {
  const results: number[] = [];
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < perBatch; i++) await op();
    results.push((msSince(start) * 1000) / perBatch);
  }
  results.sort((a, c) => a - c);
  return results[Math.floor(results.length / 2)] as number;
}

const PAYLOAD = Buffer.from(
  JSON.stringify({
    critical: {
      identity: { 'docker-reference': '127.0.0.1:5000/bench/app:v1' },
      image: { 'docker-manifest-digest': `sha256:${'a'.repeat(64)}` },
      type: 'cosign container image signature',
    },
    optional: { tag: 'v1' },
  }),
);

export async function measureCrypto(iterations: number): Promise<CryptoFigures[]> {
  const batches = 5;
  const perBatch = Math.max(1, Math.floor(iterations / batches));
  const figures: CryptoFigures[] = [];
  for (const { algorithm, key: keyLabel, make } of CASES) {
    const privateKey = make();
    const publicKey = createPublicKey(privateKey);
    const hash = ALGORITHMS[algorithm].hash;
    const options = bareOptions(algorithm, privateKey);
    const verifyOptions = bareOptions(algorithm, publicKey);
    const signer = localSigner(privateKey, algorithm, {
      publicKeyPem: spkiPem(publicKey),
      keyId: keyIdOf(publicKey),
    });
    const signature = sign(hash, PAYLOAD, options);

    // A witness over the same public key, through the real KeyRing, and the signature as loaded.
    const keys = new KeyRing({
      witnesses: [
        { name: 'w', key: { $case: 'publicKeyPem', pem: spkiPem(publicKey) }, description: undefined },
      ],
      baseDir: process.cwd(),
    });
    const witness = {
      name: 'w',
      key: { $case: 'publicKeyPem' as const, pem: spkiPem(publicKey) },
      description: undefined,
    };
    const digest = `sha256:${'a'.repeat(64)}`;
    const signatures: LoadedSignatures = {
      signatureRef: 'bench',
      evidence: [
        {
          source: 'cosign',
          id: 'sha256:bench',
          signedData: PAYLOAD,
          signature,
          claims: {
            digests: [digest],
            identity: '127.0.0.1:5000/bench/app:v1',
            subjects: [{ digest, name: '127.0.0.1:5000/bench/app:v1' }],
            tag: 'v1',
          },
          certificate: undefined,
          material: { $case: 'cosign-layer', annotations: {} },
        },
      ],
      rejected: [],
      notes: [],
      bundleError: undefined,
      referrersApi: undefined,
      unread: 0,
    };
    const target = {
      digest,
      tag: 'v1',
      repository: '127.0.0.1:5000/bench/app',
      identity: { type: 'matchRepository' } as const,
    };
    const witnessResult = await checkWitness(witness, keys, signatures, target);
    if (!witnessResult.valid)
      throw new Error(`${algorithm}: the witness check does not accept the signature`);

    // Warm up every path before timing it.
    for (let i = 0; i < 20; i++) {
      await signer.sign(PAYLOAD);
      verifySignature(publicKey, algorithm, PAYLOAD, signature);
      verify(hash, PAYLOAD, verifyOptions, signature);
    }
    figures.push({
      algorithm,
      key: keyLabel,
      signetSignUs: await perOp(batches, perBatch, () => signer.sign(PAYLOAD)),
      bareSignAsyncUs: await perOp(
        batches,
        perBatch,
        () =>
          new Promise<Buffer>((resolve, reject) =>
            sign(hash, PAYLOAD, options, (err, out) => (err ? reject(err) : resolve(out))),
          ),
      ),
      bareSignSyncUs: await perOp(batches, perBatch, () => sign(hash, PAYLOAD, options)),
      signetVerifyUs: await perOp(batches, perBatch * 4, () => {
        if (!verifySignature(publicKey, algorithm, PAYLOAD, signature)) throw new Error('invalid');
      }),
      bareVerifyUs: await perOp(batches, perBatch * 4, () => {
        if (!verify(hash, PAYLOAD, verifyOptions, signature)) throw new Error('invalid');
      }),
      witnessCheckUs: await perOp(batches, perBatch * 4, () =>
        checkWitness(witness, keys, signatures, target),
      ),
    });
    keys.close();
  }
  return figures;
}
