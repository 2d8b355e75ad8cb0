/**
 * What Signet reports about its own work, for whoever watches: the local service turns it into
 * Prometheus metrics (`/metrics`), the Lambdas into EMF metrics. Every hook is optional and must
 * not throw; `lib/` never depends on a metrics library.
 */

/** One request to a registry: its method, the answer's status (0: no answer) and how long it took. */
export interface RegistryRequestSample {
  readonly registry: string;
  readonly method: string;
  readonly status: number;
  readonly seconds: number;
}

/** One KMS call (all of the SDK's attempts together). */
export interface KmsRequestSample {
  readonly operation: string;
  readonly ok: boolean;
  readonly seconds: number;
}

/** The hooks. */
export interface Telemetry {
  registryRequest?(sample: RegistryRequestSample): void;
  kmsRequest?(sample: KmsRequestSample): void;
  /** A policy's result on an image was reused from the positive cache (`hit`) or computed. */
  verificationCache?(hit: boolean): void;
  /** A policy decided an image: passed, denied, or admitted with a warning. */
  policyDecision?(policy: string, effect: 'pass' | 'deny' | 'warn'): void;
  /**
   * Re-verification checked one admitted image: still `trusted`, a `finding` (no longer trusted),
   * or `unverifiable` this round (a registry or KMS outage; checked again next round).
   */
  reverification?(outcome: 'trusted' | 'finding' | 'unverifiable'): void;
  /** An admitted image lost trust: a new finding, by its reason code (`Image Trust Lost`). */
  imageTrustLost?(code: string): void;
}

/** Calls a hook, swallowing whatever it throws: watching must never break the work. */
export function report<K extends keyof Telemetry>(
  telemetry: Telemetry | undefined,
  hook: K,
  ...args: Parameters<NonNullable<Telemetry[K]>>
): void {
  const fn = telemetry?.[hook] as ((...a: typeof args) => void) | undefined;
  if (fn === undefined) return;
  try {
    fn.apply(telemetry, args);
  } catch {
    // a broken metrics sink is not Signet's failure
  }
}
