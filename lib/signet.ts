import type { SignetConfig } from './config/types';
import type { Logger } from './core/logger';
import type { RetryObserver, RetryPolicy } from './core/retry';
import type { Telemetry } from './core/telemetry';
import { VerifierConditionChecker } from './countersign';
import { KeyRing } from './keys/keyring';
import { RegistryClients } from './registry/clients';
import { SignaturePublisher, type PublisherOptions } from './signing/publisher';
import { SigningPipeline, type ScanLookup } from './signing/pipeline';
import type { SigningTimeLookup } from './verification/revocation';
import { ImageVerifier } from './verification/verifier';

/** Knobs the edges (local service, Lambdas, tests, benchmarks) may turn. */
export interface SignetOptions {
  readonly logger: Logger;
  readonly registryRetry?: RetryPolicy;
  readonly onRegistryRetry?: RetryObserver;
  readonly publisher?: Partial<PublisherOptions>;
  /** Told about registry and KMS requests, cache hits and policy decisions (metrics). */
  readonly telemetry?: Telemetry;
  /** Where `signet sign` finds scan results of images already in the registry. */
  readonly scans?: ScanLookup;
  /** When Signet signed what (its ledger), for time-bound revocations. */
  readonly signingTime?: SigningTimeLookup;
}

/** Everything Signet runs on, assembled once from a config: the one composition root. */
export interface Signet {
  readonly config: SignetConfig;
  readonly registries: RegistryClients;
  readonly keys: KeyRing;
  readonly pipeline: SigningPipeline;
  /** Decides images against the configured policies (admission, `POST /verify`, `signet verify`). */
  readonly verifier: ImageVerifier;
}

export function createSignet(config: SignetConfig, options: SignetOptions): Signet {
  const registries = new RegistryClients(config.registries, {
    ...(options.registryRetry !== undefined ? { retry: options.registryRetry } : {}),
    ...(options.onRegistryRetry !== undefined ? { onRetry: options.onRegistryRetry } : {}),
    ...(options.telemetry !== undefined ? { telemetry: options.telemetry } : {}),
  });
  const keys = new KeyRing(
    { witnesses: config.witnesses, baseDir: config.baseDir },
    options.telemetry !== undefined ? { kms: { telemetry: options.telemetry } } : {},
  );
  const pipeline = new SigningPipeline({
    config,
    registries,
    keys,
    logger: options.logger,
    publisher: new SignaturePublisher(options.publisher),
    // signedBy conditions: another witness's signature, checked as admission would check it.
    conditions: new VerifierConditionChecker({ config, registries, keys, logger: options.logger }),
    ...(options.scans !== undefined ? { scans: options.scans } : {}),
  });
  const verifier = new ImageVerifier({
    config,
    registries,
    keys,
    logger: options.logger,
    ...(options.telemetry !== undefined ? { telemetry: options.telemetry } : {}),
    ...(options.signingTime !== undefined ? { signingTime: options.signingTime } : {}),
  });
  return { config, registries, keys, pipeline, verifier };
}
