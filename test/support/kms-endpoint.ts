/**
 * A local AWS KMS for integration tests, behind the real SDK client: DescribeKey, GetPublicKey,
 * Sign and ListAliases as the KMS API reference describes them, over the AWS JSON 1.1 protocol
 * (`startAwsJsonEndpoint`). Keys are real: Sign signs the digest it is given (MessageType DIGEST)
 * or the message (RAW) with the key's private key, so signatures verify with plain node:crypto.
 */
import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  privateEncrypt,
  randomBytes,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { ConfiguredRetryStrategy } from '@smithy/core/retry';
import { AwsFault, startAwsJsonEndpoint, type AwsCall } from './aws-endpoint';
import { seeded } from './random';

/** Key specs the local KMS creates (KMS `KeySpec` names). */
export type KmsKeySpec = 'RSA_2048' | 'RSA_3072' | 'RSA_4096' | 'ECC_NIST_P256' | 'ECC_NIST_P384';
/** Key states the local KMS models. */
export type KmsKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';
/** Operations the local KMS answers. */
export type KmsOperation = 'DescribeKey' | 'GetPublicKey' | 'Sign' | 'ListAliases';

/** A key created in the local KMS. */
export interface CreatedKmsKey {
  /** The bare key id (a UUID). */
  keyId: string;
  arn: string;
  publicKey: KeyObject;
}

/** A running local KMS and the knobs tests turn. */
export interface KmsEndpoint {
  url: string;
  /** Every authenticated request; `target` is `TrentService.<Operation>`. */
  calls: AwsCall[];
  createKey(
    spec: KmsKeySpec,
    opts?: { alias?: string; state?: KmsKeyState; keyUsage?: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT' },
  ): CreatedKmsKey;
  /** `keyId` may be any identifier KMS accepts (id, ARN, alias name, alias ARN). */
  setKeyState(keyId: string, state: KmsKeyState): void;
  /** The next `n` calls of `op` fail with `type` (and its usual HTTP status). */
  failNext(op: KmsOperation, n: number, type?: string): void;
  /**
   * From now on, each call of `op` is throttled with probability `fraction` (0 turns it off). The
   * draws come from the endpoint's seeded generator: a run throttles the same sequence of calls.
   */
  throttleRate(op: KmsOperation, fraction: number): void;
  /** How many calls of `op` reached the endpoint. */
  count(op: KmsOperation): number;
  /** How many calls of `op` were answered ThrottlingException (by `throttleRate` or `failNext`). */
  throttled(op: KmsOperation): number;
  close(): Promise<void>;
}

/** The account every key of the local KMS belongs to. */
export const KMS_ACCOUNT = '111122223333';

/** A retry strategy for tests: the SDK's own, with `maxAttempts` and a fixed 5 ms wait between attempts. */
export function fastRetryStrategy(maxAttempts: number): ConfiguredRetryStrategy {
  return new ConfiguredRetryStrategy(maxAttempts, () => 5);
}

type Hash = 'sha256' | 'sha384' | 'sha512';

interface AlgorithmInfo {
  readonly hash: Hash;
  readonly scheme: 'pss' | 'pkcs1' | 'ecdsa';
}

const ALGORITHMS: Record<string, AlgorithmInfo> = {
  RSASSA_PSS_SHA_256: { hash: 'sha256', scheme: 'pss' },
  RSASSA_PSS_SHA_384: { hash: 'sha384', scheme: 'pss' },
  RSASSA_PSS_SHA_512: { hash: 'sha512', scheme: 'pss' },
  RSASSA_PKCS1_V1_5_SHA_256: { hash: 'sha256', scheme: 'pkcs1' },
  RSASSA_PKCS1_V1_5_SHA_384: { hash: 'sha384', scheme: 'pkcs1' },
  RSASSA_PKCS1_V1_5_SHA_512: { hash: 'sha512', scheme: 'pkcs1' },
  ECDSA_SHA_256: { hash: 'sha256', scheme: 'ecdsa' },
  ECDSA_SHA_384: { hash: 'sha384', scheme: 'ecdsa' },
};

const RSA_ALGORITHMS = [
  'RSASSA_PSS_SHA_256',
  'RSASSA_PSS_SHA_384',
  'RSASSA_PSS_SHA_512',
  'RSASSA_PKCS1_V1_5_SHA_256',
  'RSASSA_PKCS1_V1_5_SHA_384',
  'RSASSA_PKCS1_V1_5_SHA_512',
];

const HASH_LENGTH: Record<Hash, number> = { sha256: 32, sha384: 48, sha512: 64 };

// DER of DigestInfo { AlgorithmIdentifier { hash OID, NULL }, OCTET STRING (digest) }, minus the digest.
const DIGEST_INFO_PREFIX: Record<Hash, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};

/** MGF1 (RFC 8017 B.2.1) with `hash`. */
function mgf1(seed: Buffer, length: number, hash: Hash): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * HASH_LENGTH[hash] < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash(hash).update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** RSASSA-PKCS1-v1_5 over a precomputed digest: type-1 padding of DigestInfo, by the private key. */
function signPkcs1Digest(privateKey: KeyObject, hash: Hash, digest: Buffer): Buffer {
  return privateEncrypt(
    { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
    Buffer.concat([DIGEST_INFO_PREFIX[hash], digest]),
  );
}

/** RSASSA-PSS over a precomputed digest: EMSA-PSS-ENCODE (RFC 8017 9.1.1), salt = hash length, MGF1 with the same hash. */
function signPssDigest(privateKey: KeyObject, hash: Hash, digest: Buffer): Buffer {
  const modBits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
  const k = Math.ceil(modBits / 8);
  const emBits = modBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const hLen = HASH_LENGTH[hash];
  const sLen = hLen;
  const salt = randomBytes(sLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(digest).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - sLen - hLen - 2), Buffer.from([0x01]), salt]);
  const mask = mgf1(h, emLen - hLen - 1, hash);
  for (let i = 0; i < db.length; i++) db[i] = (db[i] ?? 0) ^ (mask[i] ?? 0);
  db[0] = (db[0] ?? 0) & (0xff >> (8 * emLen - emBits));
  const em = Buffer.concat([db, h, Buffer.from([0xbc])]);
  const block = Buffer.concat([Buffer.alloc(k - em.length), em]);
  return privateEncrypt({ key: privateKey, padding: constants.RSA_NO_PADDING }, block);
}

interface Curve {
  readonly p: bigint;
  readonly n: bigint;
  readonly a: bigint;
  readonly gx: bigint;
  readonly gy: bigint;
  readonly bytes: number;
}

const CURVES: Record<'P-256' | 'P-384', Curve> = {
  'P-256': {
    p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
    n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
    a: 0xffffffff00000001000000000000000000000000fffffffffffffffffffffffcn,
    gx: 0x6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296n,
    gy: 0x4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5n,
    bytes: 32,
  },
  'P-384': {
    p: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffffn,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
    a: 0xfffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000fffffffcn,
    gx: 0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
    gy: 0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
    bytes: 48,
  },
};

const mod = (x: bigint, m: bigint): bigint => ((x % m) + m) % m;

function invert(x: bigint, m: bigint): bigint {
  let [a, b, u, v] = [mod(x, m), m, 1n, 0n];
  while (a !== 0n) {
    const q = b / a;
    [a, b] = [b - q * a, a];
    [u, v] = [v - q * u, u];
  }
  return mod(v, m);
}

type Point = { x: bigint; y: bigint } | undefined; // undefined: the point at infinity

function add(c: Curve, p: Point, q: Point): Point {
  if (p === undefined) return q;
  if (q === undefined) return p;
  let slope: bigint;
  if (p.x === q.x) {
    if (mod(p.y + q.y, c.p) === 0n) return undefined;
    slope = mod((3n * p.x * p.x + c.a) * invert(2n * p.y, c.p), c.p);
  } else {
    slope = mod((q.y - p.y) * invert(q.x - p.x, c.p), c.p);
  }
  const x = mod(slope * slope - p.x - q.x, c.p);
  return { x, y: mod(slope * (p.x - x) - p.y, c.p) };
}

function multiply(c: Curve, k: bigint, point: Point): Point {
  let result: Point;
  let addend = point;
  for (let e = k; e > 0n; e >>= 1n) {
    if (e & 1n) result = add(c, result, addend);
    addend = add(c, addend, addend);
  }
  return result;
}

const toBigInt = (bytes: Buffer): bigint => (bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`));

function derInteger(value: bigint): Buffer {
  let hex = value.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let bytes = Buffer.from(hex, 'hex');
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return Buffer.concat([Buffer.from([0x02, bytes.length]), bytes]);
}

/** ECDSA over a precomputed digest (FIPS 186-4 6.4, random k), as an ASN.1 DER signature. */
function signEcdsaDigest(privateKey: KeyObject, digest: Buffer): Buffer {
  const curveName = privateKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
  const c = CURVES[curveName];
  const d = toBigInt(Buffer.from(privateKey.export({ format: 'jwk' }).d ?? '', 'base64url'));
  // The leftmost bits of the digest, as many as the order has (a whole number of bytes here).
  const e = toBigInt(digest.subarray(0, c.bytes));
  for (;;) {
    const k = mod(toBigInt(randomBytes(c.bytes + 8)), c.n - 1n) + 1n;
    const r = mod(multiply(c, k, { x: c.gx, y: c.gy })?.x ?? 0n, c.n);
    if (r === 0n) continue;
    const s = mod(invert(k, c.n) * (e + r * d), c.n);
    if (s === 0n) continue;
    const body = Buffer.concat([derInteger(r), derInteger(s)]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  }
}

/** Signs a precomputed `digest` the way KMS does for `algorithm`. */
export function signDigest(privateKey: KeyObject, algorithm: string, digest: Buffer): Buffer {
  const info = ALGORITHMS[algorithm];
  if (info === undefined) throw new Error(`unknown algorithm ${algorithm}`);
  switch (info.scheme) {
    case 'pkcs1':
      return signPkcs1Digest(privateKey, info.hash, digest);
    case 'pss':
      return signPssDigest(privateKey, info.hash, digest);
    case 'ecdsa':
      return signEcdsaDigest(privateKey, digest);
  }
}

interface StoredKey {
  readonly keyId: string;
  readonly arn: string;
  readonly spec: KmsKeySpec;
  readonly usage: 'SIGN_VERIFY' | 'ENCRYPT_DECRYPT';
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly created: number;
  state: KmsKeyState;
}

function generate(spec: KmsKeySpec): { privateKey: KeyObject; publicKey: KeyObject } {
  switch (spec) {
    case 'RSA_2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'RSA_3072':
      return generateKeyPairSync('rsa', { modulusLength: 3072 });
    case 'RSA_4096':
      return generateKeyPairSync('rsa', { modulusLength: 4096 });
    case 'ECC_NIST_P256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ECC_NIST_P384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
  }
}

function signingAlgorithmsOf(key: StoredKey): string[] {
  if (key.usage !== 'SIGN_VERIFY') return [];
  switch (key.spec) {
    case 'RSA_2048':
    case 'RSA_3072':
    case 'RSA_4096':
      return RSA_ALGORITHMS;
    case 'ECC_NIST_P256':
      return ['ECDSA_SHA_256'];
    case 'ECC_NIST_P384':
      return ['ECDSA_SHA_384'];
  }
}

const STATUS_OF: Record<string, number> = {
  KMSInternalException: 500,
  KeyUnavailableException: 500,
  DependencyTimeoutException: 503,
  InternalFailure: 500,
  ServiceUnavailable: 503,
};

/**
 * Starts a local KMS (region `us-east-1` unless given, account 111122223333); `seed` seeds the
 * throttling draws of `throttleRate`.
 */
export async function startKmsEndpoint(
  options: { region?: string; seed?: number } = {},
): Promise<KmsEndpoint> {
  const region = options.region ?? 'us-east-1';
  const random = seeded(options.seed ?? 1);
  const throttles = new Map<string, number>();
  const keys = new Map<string, StoredKey>();
  const aliases = new Map<string, { keyId: string; created: number }>();
  const failures = new Map<string, string[]>();
  const throttling = new Map<string, number>();

  const keyArn = (keyId: string) => `arn:aws:kms:${region}:${KMS_ACCOUNT}:key/${keyId}`;
  const aliasArn = (alias: string) => `arn:aws:kms:${region}:${KMS_ACCOUNT}:${alias}`;

  const lookup = (id: unknown): StoredKey | undefined => {
    if (typeof id !== 'string') return undefined;
    let keyId = id;
    const arn = /^arn:aws:kms:([^:]+):(\d{12}):(key|alias)\/(.+)$/.exec(id);
    if (arn !== null) {
      if (arn[1] !== region || arn[2] !== KMS_ACCOUNT) return undefined;
      keyId = arn[3] === 'key' ? (arn[4] ?? '') : `alias/${arn[4] ?? ''}`;
    }
    if (keyId.startsWith('alias/')) keyId = aliases.get(keyId)?.keyId ?? '';
    return keys.get(keyId);
  };

  const resolve = (id: unknown): StoredKey => {
    if (id === undefined || id === null || id === '') {
      throw new AwsFault(
        'ValidationException',
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null",
      );
    }
    const key = lookup(id);
    if (key === undefined) {
      const text = String(id);
      throw new AwsFault(
        'NotFoundException',
        text.includes('alias/')
          ? `Alias ${text.startsWith('arn:') ? text : aliasArn(text)} is not found.`
          : `Key '${text.startsWith('arn:') ? text : keyArn(text)}' does not exist`,
      );
    }
    return key;
  };

  const assertUsable = (key: StoredKey): void => {
    switch (key.state) {
      case 'Enabled':
        return;
      case 'Disabled':
        throw new AwsFault('DisabledException', `${key.arn} is disabled.`);
      case 'PendingDeletion':
        throw new AwsFault('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
  };

  const throttle = (op: string, message: string): AwsFault => {
    throttles.set(op, (throttles.get(op) ?? 0) + 1);
    return new AwsFault('ThrottlingException', message);
  };

  const injected = (op: string): void => {
    const queue = failures.get(op);
    const type = queue?.shift();
    if (type === 'ThrottlingException') throw throttle(op, `injected ${type}`);
    if (type !== undefined) throw new AwsFault(type, `injected ${type}`, STATUS_OF[type] ?? 400);
    const rate = throttling.get(op) ?? 0;
    if (rate > 0 && random() < rate) throw throttle(op, 'Rate exceeded');
  };

  const metadata = (key: StoredKey) => ({
    AWSAccountId: KMS_ACCOUNT,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: key.created,
    Enabled: key.state === 'Enabled',
    Description: '',
    KeyUsage: key.usage,
    KeyState: key.state,
    ...(key.state === 'PendingDeletion'
      ? { DeletionDate: key.created + 7 * 86400, PendingDeletionWindowInDays: 7 }
      : {}),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: key.spec,
    KeySpec: key.spec,
    ...(key.usage === 'SIGN_VERIFY'
      ? { SigningAlgorithms: signingAlgorithmsOf(key) }
      : { EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] }),
    MultiRegion: false,
  });

  const endpoint = await startAwsJsonEndpoint({
    targetPrefix: 'TrentService',
    handlers: {
      DescribeKey: (body: { KeyId?: string }) => {
        injected('DescribeKey');
        return { KeyMetadata: metadata(resolve(body.KeyId)) };
      },
      GetPublicKey: (body: { KeyId?: string }) => {
        injected('GetPublicKey');
        const key = resolve(body.KeyId);
        assertUsable(key);
        return {
          KeyId: key.arn,
          PublicKey: key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
          CustomerMasterKeySpec: key.spec,
          KeySpec: key.spec,
          KeyUsage: key.usage,
          ...(key.usage === 'SIGN_VERIFY'
            ? { SigningAlgorithms: signingAlgorithmsOf(key) }
            : { EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] }),
        };
      },
      Sign: (body: { KeyId?: string; Message?: string; MessageType?: string; SigningAlgorithm?: string }) => {
        injected('Sign');
        const key = resolve(body.KeyId);
        const message = Buffer.from(body.Message ?? '', 'base64');
        if (message.length === 0 || message.length > 4096) {
          throw new AwsFault(
            'ValidationException',
            "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length between 1 and 4096",
          );
        }
        const messageType = body.MessageType ?? 'RAW';
        if (messageType !== 'RAW' && messageType !== 'DIGEST') {
          throw new AwsFault(
            'ValidationException',
            `1 validation error detected: Value '${messageType}' at 'messageType' failed to satisfy constraint: Member must satisfy enum value set: [RAW, DIGEST]`,
          );
        }
        const algorithm = body.SigningAlgorithm ?? '';
        const info = ALGORITHMS[algorithm];
        if (info === undefined) {
          throw new AwsFault(
            'ValidationException',
            `1 validation error detected: Value '${algorithm}' at 'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [${Object.keys(ALGORITHMS).join(', ')}]`,
          );
        }
        assertUsable(key);
        if (!signingAlgorithmsOf(key).includes(algorithm)) {
          throw new AwsFault(
            'InvalidKeyUsageException',
            `${algorithm} is not a valid signing algorithm for ${key.arn} (key usage ${key.usage}, key spec ${key.spec}).`,
          );
        }
        if (messageType === 'DIGEST' && message.length !== HASH_LENGTH[info.hash]) {
          throw new AwsFault('ValidationException', `Digest is invalid length for algorithm ${algorithm}.`);
        }
        const digest = messageType === 'DIGEST' ? message : createHash(info.hash).update(message).digest();
        return {
          KeyId: key.arn,
          Signature: signDigest(key.privateKey, algorithm, digest).toString('base64'),
          SigningAlgorithm: algorithm,
        };
      },
      ListAliases: (body: { KeyId?: string }) => {
        injected('ListAliases');
        const only = body.KeyId !== undefined ? resolve(body.KeyId).keyId : undefined;
        return {
          Aliases: [...aliases.entries()]
            .filter(([, a]) => only === undefined || a.keyId === only)
            .map(([name, a]) => ({
              AliasName: name,
              AliasArn: aliasArn(name),
              TargetKeyId: a.keyId,
              CreationDate: a.created,
              LastUpdatedDate: a.created,
            })),
          Truncated: false,
        };
      },
    },
  });

  return {
    url: endpoint.url,
    calls: endpoint.calls,
    createKey(spec, opts = {}) {
      const keyId = randomUUID();
      const { privateKey, publicKey } = generate(spec);
      const created = Math.floor(Date.now() / 1000);
      keys.set(keyId, {
        keyId,
        arn: keyArn(keyId),
        spec,
        usage: opts.keyUsage ?? 'SIGN_VERIFY',
        privateKey,
        publicKey,
        created,
        state: opts.state ?? 'Enabled',
      });
      if (opts.alias !== undefined) {
        const alias = opts.alias.startsWith('alias/') ? opts.alias : `alias/${opts.alias}`;
        aliases.set(alias, { keyId, created });
      }
      return { keyId, arn: keyArn(keyId), publicKey: createPublicKey(privateKey) };
    },
    setKeyState(keyId, state) {
      const key = lookup(keyId);
      if (key === undefined) throw new Error(`no key ${keyId}`);
      key.state = state;
    },
    failNext(op, n, type = 'ThrottlingException') {
      const queue = failures.get(op) ?? [];
      for (let i = 0; i < n; i++) queue.push(type);
      failures.set(op, queue);
    },
    throttleRate(op, fraction) {
      throttling.set(op, Math.min(1, Math.max(0, fraction)));
    },
    count: (op) => endpoint.calls.filter((c) => c.target === `TrentService.${op}`).length,
    throttled: (op) => throttles.get(op) ?? 0,
    close: () => endpoint.close(),
  };
}
