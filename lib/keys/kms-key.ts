import { createPublicKey, type KeyObject } from 'node:crypto';
import {
  DescribeKeyCommand,
  GetPublicKeyCommand,
  KMSClient,
  SignCommand,
  type KMSClientConfig,
  type KeyMetadata,
} from '@aws-sdk/client-kms';
import type { Signer } from '@sigstore/sign';
import type { KeyReference, SigningAlgorithm } from '../config/types';
import { report, type Telemetry } from '../core/telemetry';
import { ConfigError, KeyError, describeError } from '../core/errors';
import { onceUntilFailure } from '../core/once';
import {
  assertAlgorithmFits,
  describeShape,
  digestFor,
  shapeOf,
  spkiPem,
  verifySignature,
} from './algorithms';
import type { KeyShape, WitnessKey } from './types';

/** A KMS key as the configuration names it. */
export type KmsKeyReference = Extract<KeyReference, { $case: 'kms' }>;

/** How Signet's KMS clients are built. */
export interface KmsClientOptions {
  /**
   * Attempts per KMS call, the first included (default 5). The SDK's standard retry strategy
   * retries throttling and transient errors with backoff; Signet adds no retry loop of its own.
   */
  readonly maxAttempts?: number;
  /**
   * Passed to every `KMSClient` (credentials, `retryStrategy`, `requestHandler`...). A
   * `retryStrategy` brings its own attempt count and replaces `maxAttempts`.
   */
  readonly clientConfig?: Omit<KMSClientConfig, 'region' | 'endpoint' | 'maxAttempts'>;
  /** Told about every KMS call (operation, outcome, duration with the SDK's retries): metrics. */
  readonly telemetry?: Telemetry;
}

/** Attempts per KMS call when the options say nothing. */
export const DEFAULT_KMS_MAX_ATTEMPTS = 5;

// A KMS call that hangs would hold a signing event until the Lambda times out; fail it instead
// (a timeout is transient, so the SDK retries it).
const DEFAULT_REQUEST_HANDLER = { connectionTimeout: 5_000, requestTimeout: 15_000 };

/** KMS clients, one per (region, endpoint), created on first use and shared by every KMS key. */
export class KmsClients {
  private readonly clients = new Map<string, KMSClient>();
  private readonly maxAttempts: number;
  private readonly clientConfig: Omit<KMSClientConfig, 'region' | 'endpoint' | 'maxAttempts'>;
  private readonly telemetry: Telemetry | undefined;

  constructor(options: KmsClientOptions = {}) {
    this.maxAttempts = options.maxAttempts ?? DEFAULT_KMS_MAX_ATTEMPTS;
    this.clientConfig = options.clientConfig ?? {};
    this.telemetry = options.telemetry;
  }

  /** The client for `region` (undefined: the SDK's default chain) and `endpoint` (undefined: AWS). */
  get(region: string | undefined, endpoint: string | undefined): KMSClient {
    const key = `${region ?? ''}|${endpoint ?? ''}`;
    let client = this.clients.get(key);
    if (client === undefined) {
      client = new KMSClient({
        requestHandler: DEFAULT_REQUEST_HANDLER,
        ...this.clientConfig,
        maxAttempts: this.maxAttempts,
        region,
        endpoint,
      });
      const telemetry = this.telemetry;
      if (telemetry !== undefined) {
        // Outermost step: one sample per call, the SDK's retries included.
        client.middlewareStack.add(
          (next, context) => async (args) => {
            const started = performance.now();
            let ok = false;
            try {
              const out = await next(args);
              ok = true;
              return out;
            } finally {
              report(telemetry, 'kmsRequest', {
                operation: context.commandName ?? 'unknown',
                ok,
                seconds: (performance.now() - started) / 1000,
              });
            }
          },
          { step: 'initialize', name: 'signetTelemetry' },
        );
      }
      this.clients.set(key, client);
    }
    return client;
  }

  /** Closes every client's connections. */
  destroy(): void {
    for (const client of this.clients.values()) client.destroy();
    this.clients.clear();
  }
}

const THROTTLED = new Set([
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);
const ACCESS_DENIED = new Set([
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
]);
const UNAVAILABLE = new Set([
  'KMSInternalException',
  'DependencyTimeoutException',
  'KeyUnavailableException',
  'InternalFailure',
  'ServiceUnavailable',
  'TimeoutError',
]);

/**
 * Converts an error from a KMS call into a KeyError with a fixed code (the SDK error stays as
 * `cause`); a missing region is a ConfigError. Called where KMS errors enter Signet.
 */
export function kmsError(err: unknown, keyId: string, operation: string): KeyError | ConfigError {
  if (err instanceof KeyError || err instanceof ConfigError) return err;
  const e = (err ?? {}) as { name?: string; $metadata?: { httpStatusCode?: number; attempts?: number } };
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const attempts = e.$metadata?.attempts;
  const detail = `${name && name !== 'Error' ? `${name}: ` : ''}${describeError(err)}`;
  const message = `KMS ${operation} failed${attempts !== undefined && attempts > 1 ? ` after ${attempts} attempts` : ''}: ${detail}`;
  const options = { cause: err };
  if (/region is missing/i.test(describeError(err))) {
    return new ConfigError(
      'CONFIG_INVALID',
      `KMS key ${keyId}: no AWS region; use a key ARN or set AWS_REGION`,
      options,
    );
  }
  // The SDK's credential chain found nothing: no request was sent, so KMS denied nothing.
  if (name === 'CredentialsProviderError') {
    return new KeyError('AWS_CREDENTIALS_MISSING', keyId, message, options);
  }
  if (name === 'DisabledException') return new KeyError('KMS_DISABLED', keyId, message, options);
  if (name === 'KMSInvalidStateException') return new KeyError('KMS_INVALID_STATE', keyId, message, options);
  if (name === 'NotFoundException') return new KeyError('KMS_NOT_FOUND', keyId, message, options);
  if (THROTTLED.has(name) || status === 429) return new KeyError('KMS_THROTTLED', keyId, message, options);
  if (ACCESS_DENIED.has(name) || status === 401 || status === 403) {
    return new KeyError('KMS_ACCESS_DENIED', keyId, message, options);
  }
  // No HTTP status at all: the request never got an answer (refused, reset, timed out).
  if (UNAVAILABLE.has(name) || status === undefined || status >= 500) {
    return new KeyError('KMS_UNAVAILABLE', keyId, message, options);
  }
  return new KeyError('KMS_SIGN_FAILED', keyId, message, options);
}

interface KmsPublicKey {
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  readonly shape: KeyShape;
  readonly signingAlgorithms: readonly string[];
}

/**
 * A witness whose key is an AWS KMS asymmetric SIGN_VERIFY key. On first use it describes the key
 * (usage and state) and fetches its public key once; signing hashes locally and sends KMS the
 * digest only (`MessageType: DIGEST`), so payloads of any size cost one small request.
 */
export class KmsWitnessKey implements WitnessKey {
  readonly canSign = true;
  /** DescribeKey, once; a failure (e.g. a disabled key) is not remembered, so it is asked again. */
  private readonly describe = onceUntilFailure(() => this.fetchMetadata());
  /** GetPublicKey, once per key (after DescribeKey accepted it); failures are not remembered. */
  private readonly fetchPublicKey = onceUntilFailure(() => this.readPublicKey());

  constructor(
    readonly witness: string,
    readonly reference: KmsKeyReference,
    private readonly clients: KmsClients,
  ) {}

  /** The key ARN (from DescribeKey), also when the configuration names an alias. */
  async keyId(): Promise<string> {
    return (await this.describe()).Arn;
  }

  async publicKey(): Promise<KeyObject> {
    return (await this.fetchPublicKey()).publicKey;
  }

  async shape(): Promise<KeyShape> {
    return (await this.fetchPublicKey()).shape;
  }

  async signer(algorithm: SigningAlgorithm): Promise<Signer> {
    const { Arn: arn } = await this.describe();
    const material = await this.fetchPublicKey();
    const label = `${this.reference.keyId}${arn !== this.reference.keyId ? ` (${arn})` : ''} of witness "${this.witness}"`;
    if (!material.signingAlgorithms.includes(algorithm)) {
      throw new ConfigError(
        'ALGORITHM_MISMATCH',
        `KMS key ${label} is ${describeShape(material.shape)} and signs with ${material.signingAlgorithms.join(', ') || 'nothing'}, not ${algorithm}`,
      );
    }
    assertAlgorithmFits(material.shape, algorithm, `KMS key ${label}`);
    return {
      sign: async (data) => {
        const signature = await this.sign(algorithm, data);
        // A signature that does not verify would be published and then fail every verifier: the
        // alias may have moved to another key since the public key was fetched.
        if (!verifySignature(material.publicKey, algorithm, data, signature)) {
          throw new KeyError(
            'KMS_SIGN_FAILED',
            this.reference.keyId,
            `KMS returned a ${algorithm} signature that does not verify with the public key of ${arn} (was the alias moved to another key?)`,
          );
        }
        return { signature, key: { $case: 'publicKey', publicKey: material.publicKeyPem, hint: arn } };
      },
    };
  }

  private get client(): KMSClient {
    return this.clients.get(this.reference.region, this.reference.endpoint);
  }

  private async sign(algorithm: SigningAlgorithm, data: Buffer): Promise<Buffer> {
    let signature: Uint8Array | undefined;
    try {
      const out = await this.client.send(
        new SignCommand({
          KeyId: this.reference.keyId,
          Message: digestFor(algorithm, data),
          MessageType: 'DIGEST',
          SigningAlgorithm: algorithm,
        }),
      );
      signature = out.Signature;
    } catch (err) {
      throw kmsError(err, this.reference.keyId, 'Sign');
    }
    if (signature === undefined || signature.length === 0) {
      throw new KeyError('KMS_SIGN_FAILED', this.reference.keyId, 'KMS Sign returned no signature');
    }
    return Buffer.from(signature);
  }

  private async fetchMetadata(): Promise<KeyMetadata & { Arn: string }> {
    const keyId = this.reference.keyId;
    let metadata: KeyMetadata | undefined;
    try {
      metadata = (await this.client.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata;
    } catch (err) {
      throw kmsError(err, keyId, 'DescribeKey');
    }
    if (metadata?.Arn === undefined) {
      throw new KeyError('KMS_SIGN_FAILED', keyId, 'KMS DescribeKey returned no key metadata');
    }
    const arn = metadata.Arn;
    if (metadata.KeyUsage !== 'SIGN_VERIFY') {
      throw new ConfigError(
        'KEY_INVALID',
        `KMS key ${keyId} (${arn}) of witness "${this.witness}" has key usage ${metadata.KeyUsage ?? 'unknown'}; a witness needs an asymmetric SIGN_VERIFY key`,
      );
    }
    switch (metadata.KeyState) {
      case 'Enabled':
        return { ...metadata, Arn: arn };
      case 'Disabled':
        throw new KeyError('KMS_DISABLED', keyId, `KMS key ${arn} is disabled`);
      default:
        throw new KeyError(
          'KMS_INVALID_STATE',
          keyId,
          `KMS key ${arn} is ${metadata.KeyState ?? 'in an unknown state'}, not Enabled`,
        );
    }
  }

  private async readPublicKey(): Promise<KmsPublicKey> {
    const { Arn: arn } = await this.describe();
    let out;
    try {
      out = await this.client.send(new GetPublicKeyCommand({ KeyId: arn }));
    } catch (err) {
      throw kmsError(err, this.reference.keyId, 'GetPublicKey');
    }
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: Buffer.from(out.PublicKey ?? []), format: 'der', type: 'spki' });
    } catch (err) {
      throw new ConfigError(
        'KEY_INVALID',
        `KMS key ${arn}: GetPublicKey returned no usable SPKI public key (${describeError(err)})`,
        { cause: err },
      );
    }
    return {
      publicKey,
      publicKeyPem: spkiPem(publicKey),
      shape: shapeOf(publicKey),
      signingAlgorithms: out.SigningAlgorithms ?? [],
    };
  }
}
