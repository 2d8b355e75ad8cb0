/**
 * The ledger's and re-verification's Prometheus metrics, registered into the service's registry
 * (`ServiceMetrics.registry`, served at `/metrics`) next to the others. Labels are bounded: the
 * outcome and the finding code come from fixed lists.
 */
import { Counter, type Registry } from 'prom-client';
import type { Telemetry } from '../lib/core/telemetry';

/** Counters for re-verification (its telemetry hooks) and the ledger recorder. */
export class LedgerMetrics implements Telemetry {
  private readonly reverified: Counter<'outcome'>;
  private readonly trustLost: Counter<'code'>;
  private readonly writeFailures: Counter;
  private readonly dropped: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.reverified = new Counter({
      name: 'signet_reverify_images_total',
      help: 'Admitted images re-verified, by outcome (trusted, finding, unverifiable)',
      labelNames: ['outcome'],
      registers,
    });
    this.trustLost = new Counter({
      name: 'signet_image_trust_lost_total',
      help: 'Findings opened: admitted images no longer trusted, by reason code',
      labelNames: ['code'],
      registers,
    });
    this.writeFailures = new Counter({
      name: 'signet_ledger_write_failures_total',
      help: 'Ledger writes that failed (the records are kept and written again)',
      registers,
    });
    this.dropped = new Counter({
      name: 'signet_ledger_records_dropped_total',
      help: 'Ledger records dropped because the store kept failing',
      registers,
    });
  }

  reverification(outcome: 'trusted' | 'finding' | 'unverifiable'): void {
    this.reverified.inc({ outcome });
  }

  imageTrustLost(code: string): void {
    this.trustLost.inc({ code });
  }

  /** The recorder's `onFailure`. */
  ledgerFailure(failure: { readonly dropped: number }): void {
    if (failure.dropped > 0) this.dropped.inc(failure.dropped);
    else this.writeFailures.inc();
  }
}
