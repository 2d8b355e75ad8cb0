import type { SignetConfig, SigningRule, Trigger } from '../config/types';
import { ConfigError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { repositoryName, signatureTag, type ImageReference } from '../core/reference';
import { isSignatureArtifact } from '../cosign/signature-manifest';
import type { PushEvent, ScanEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { Descriptor, RegistryClient, RegistryClientFactory } from '../registry/types';
import { witnessServices, type ServiceHttpOptions, type WitnessServices } from '../transparency';
import { BundlePublisher, type BundleCandidate } from './bundle-publisher';
import { pushOfScan, type ConditionChecker, type PushContext } from './conditions';
import { ConditionGate, type ScanLookup } from './gate';
import { planPush, signingTargets, type PushPlan } from './plan';
import {
  errorFields,
  logReport,
  MANIFEST_GONE,
  ruleOutcome,
  type RuleOutcome,
  type SigningReport,
} from './report';
import { RuleSet } from './rules';
import { SignaturePublisher, type CandidateOutcome } from './publisher';
import { prepareRule, rulePayload, type RuleWork } from './work';

export type { ScanLookup } from './gate';
export type { PushPlan } from './plan';
export {
  MANIFEST_GONE,
  notSigned,
  REGISTRY_NOT_CONFIGURED,
  reportFailed,
  type RuleOutcome,
  type SigningReport,
} from './report';

export interface SigningPipelineDeps {
  readonly config: SignetConfig;
  readonly registries: RegistryClientFactory;
  readonly keys: KeyRing;
  readonly logger: Logger;
  readonly publisher?: SignaturePublisher;
  readonly bundles?: BundlePublisher;
  /** Checks `signedBy` conditions (another witness's signature); without it they fail. */
  readonly conditions?: ConditionChecker;
  /** Where a manual sign finds scan results (registry scanners); without it they are unavailable. */
  readonly scans?: ScanLookup;
  /** Epoch ms (scan waits); tests pass a fake. */
  readonly clock?: () => number;
  /** Timeouts and size limits of the witnesses' transparency logs and timestamp authorities. */
  readonly witnessServices?: ServiceHttpOptions;
}

/**
 * Push → matching rules → conditions → payload → signature → `.sig` layer (and, for rules that
 * ask, a Sigstore bundle). Idempotent: a push delivered twice, or a tag pushed again, costs a
 * manifest read and no signing.
 */
export class SigningPipeline {
  private readonly rules: RuleSet;
  private readonly publisher: SignaturePublisher;
  private readonly bundles: BundlePublisher;
  private readonly gate: ConditionGate;
  private readonly services: ReadonlyMap<string, WitnessServices>;

  constructor(private readonly deps: SigningPipelineDeps) {
    this.rules = new RuleSet(
      deps.config.signingRules,
      deps.config.registries.map((r) => r.host),
    );
    this.publisher = deps.publisher ?? new SignaturePublisher();
    this.bundles = deps.bundles ?? new BundlePublisher();
    this.gate = new ConditionGate(deps);
    this.services = witnessServices(deps.config.witnesses, deps.witnessServices);
  }

  /**
   * Handles a push notification (automatic trigger). `context` adds what the event does not
   * carry: the scan result known for the digest, and when the push was first seen.
   */
  handlePush(event: PushEvent, context: PushContext = {}): Promise<SigningReport> {
    return this.run(event, 'automatic', undefined, context);
  }

  /** Handles a scan result: the rules waiting for scans decide the scanned push (stateless edges). */
  handleScan(scan: ScanEvent): Promise<SigningReport> {
    return this.run(pushOfScan(scan), 'automatic', undefined, { scan: scan.result });
  }

  /**
   * Signs an image already in the registry (`signet sign`): the rules covering it, of either
   * trigger, or exactly the named rule. A tag reference is resolved to its digest first.
   */
  async signImage(ref: ImageReference, ruleName?: string, context?: PushContext): Promise<SigningReport> {
    if (ruleName !== undefined) {
      const rule = this.rules.byName(ruleName);
      if (rule === undefined) throw new ConfigError('RULE_UNKNOWN', `no signing rule named "${ruleName}"`);
      if (!rule.enabled) throw new ConfigError('RULE_UNKNOWN', `signing rule "${ruleName}" is disabled`);
    }
    const client = this.deps.registries.client(ref.registry);
    let digest = ref.digest;
    if (digest === undefined) {
      const head = await client.headManifest(ref.repository, ref.tag ?? 'latest');
      if (head === undefined) {
        throw new ConfigError(
          'CONFIG_INVALID',
          `${repositoryName(ref)}:${ref.tag} does not exist in the registry`,
        );
      }
      digest = head.digest;
    }
    return this.run(
      {
        registry: ref.registry,
        repository: ref.repository,
        digest,
        tag: ref.tag,
        mediaType: undefined,
        artifactType: undefined,
        source: 'manual',
        id: undefined,
      },
      'manual',
      ruleName,
      context,
    );
  }

  /**
   * Signs the digest `event` names with exactly the enabled rules `ruleNames` (of either trigger)
   * that cover it: a backfill, which knows which rules still lack their witness's signature.
   */
  signRules(event: PushEvent, ruleNames: readonly string[], context?: PushContext): Promise<SigningReport> {
    return this.run(event, 'manual', ruleNames, context);
  }

  /** The enabled rules of either trigger that cover a repository (or exactly `ruleName`): a manual sign's. */
  rulesFor(registry: string, repository: string, ruleName?: string): SigningRule[] {
    return this.rules.matching({ registry, repository }, 'manual', ruleName).filter((rule) => rule.enabled);
  }

  /**
   * The payload `rule` writes for `digest` at `registry/repository` (under `tag` in default mode)
   * when its conditions add nothing: what a backfill looks for before it signs.
   */
  async payloadFor(
    rule: SigningRule,
    target: { readonly registry: string; readonly repository: string; readonly digest: string },
    tag: string | undefined,
  ): Promise<Buffer> {
    const keyId = await this.deps.keys.get(rule.witness).keyId();
    return rulePayload(rule, target.registry, target.repository, target.digest, tag, {}, keyId);
  }

  /**
   * What a push would take, decided without the network: signature artifacts and hosts outside
   * `registries[]` are skipped, and so are repositories no (enabled, on-push) rule covers.
   */
  plan(event: PushEvent, trigger: Trigger = 'automatic', ruleName?: string | readonly string[]): PushPlan {
    return planPush(this.rules, event, trigger, ruleName);
  }

  private async run(
    pushed: PushEvent,
    trigger: Trigger,
    ruleName?: string | readonly string[],
    context: PushContext = {},
  ): Promise<SigningReport> {
    const started = performance.now();
    const plan = this.plan(pushed, trigger, ruleName);
    const event = plan.$case === 'sign' ? (plan.redrive ?? pushed) : pushed;
    const base = {
      image: `${event.registry}/${event.repository}${event.tag !== undefined ? `:${event.tag}` : ''}@${event.digest}`,
      registry: event.registry,
      repository: event.repository,
      digest: event.digest,
      tag: event.tag,
    };
    const skip = (reason: string): SigningReport => {
      this.deps.logger.debug('push skipped', { image: base.image, reason });
      return { ...base, skipped: reason, outcomes: [], durationMs: performance.now() - started };
    };

    if (plan.$case === 'skip') return skip(plan.reason);
    const rules = plan.rules;

    let outcomes: RuleOutcome[];
    try {
      const client = this.deps.registries.client(event.registry);
      const fetched = await client.getManifest(event.repository, event.digest);
      if (fetched === undefined) {
        // A signature may arrive before its image (replication order): the image's push decides then.
        return skip(
          plan.redrive !== undefined ? 'the signed manifest is not in the registry (yet)' : MANIFEST_GONE,
        );
      }
      if (isSignatureArtifact(fetched.manifest)) return skip('signature artifact manifest');

      // A re-drive leaves alone the rules whose witness already vouches for the digest: the push
      // itself may have been countersigned, with its tag, and a second signature adds nothing.
      const signedBefore =
        plan.redrive === undefined ? [] : await this.gate.alreadySigned(client, event, rules);
      const pending = rules.filter((rule) => !signedBefore.some((o) => o.rule === rule.name));
      const targets = signingTargets(event.digest, fetched, pending);
      const scanned = await this.gate.withScan(event, pending, context);
      outcomes = [
        ...signedBefore,
        ...(
          await Promise.all(
            targets.map(({ subject, rules: digestRules }) =>
              this.signDigest(client, event, subject, digestRules, scanned),
            ),
          )
        ).flat(),
      ];
    } catch (error) {
      // Reading the image failed (after retries): every rule failed for the same cause.
      const signatureRef = `${event.registry}/${event.repository}:${signatureTag(event.digest)}`;
      outcomes = rules.map((rule) =>
        ruleOutcome(rule, event.digest, signatureRef, undefined, 'failed', error),
      );
    }
    const report: SigningReport = {
      ...base,
      skipped: undefined,
      outcomes,
      durationMs: performance.now() - started,
    };
    logReport(this.deps.logger, report);
    return report;
  }

  /** Every rule of one digest: the cosign signatures first, then the bundles of the rules that ask. */
  private async signDigest(
    client: RegistryClient,
    event: PushEvent,
    subject: Descriptor,
    rules: readonly SigningRule[],
    context: PushContext,
  ): Promise<RuleOutcome[]> {
    const signatureRef = `${event.registry}/${event.repository}:${signatureTag(subject.digest)}`;
    const decided: RuleOutcome[] = [];
    const allowed: { rule: SigningRule; annotations: Readonly<Record<string, string>> }[] = [];
    const evaluations = await Promise.all(
      rules.map(async (rule) => {
        try {
          return { rule, evaluation: await this.gate.evaluate(rule, event, subject.digest, context) };
        } catch (error) {
          return {
            rule,
            evaluation: { $case: 'error', code: 'INTERNAL', detail: describeError(error) } as const,
          };
        }
      }),
    );
    for (const { rule, evaluation } of evaluations) {
      const outcome = (status: RuleOutcome['status'], extra: Partial<RuleOutcome> = {}): RuleOutcome => ({
        ...ruleOutcome(rule, subject.digest, signatureRef, undefined, status),
        ...extra,
      });
      switch (evaluation.$case) {
        case 'held':
          allowed.push({ rule, annotations: evaluation.annotations });
          break;
        case 'unmet':
          decided.push(outcome('not-signed', { unmet: evaluation.unmet }));
          break;
        case 'waiting':
          decided.push(outcome('waiting', { unmet: evaluation.unmet, waitUntil: evaluation.until }));
          break;
        case 'error':
          decided.push(outcome('failed', { error: evaluation.detail, errorCode: evaluation.code }));
          break;
      }
    }
    if (allowed.length === 0) return decided;
    const prepared = await Promise.all(
      allowed.map(({ rule, annotations }) =>
        prepareRule(
          this.deps.keys,
          rule,
          event,
          subject.digest,
          annotations,
          this.services.get(rule.witness),
        ),
      ),
    );
    const failed: RuleOutcome[] = [...decided];
    const works: RuleWork[] = [];
    for (const entry of prepared) {
      if (entry.$case === 'ready') works.push(entry.work);
      else
        failed.push(ruleOutcome(entry.rule, subject.digest, signatureRef, undefined, 'failed', entry.error));
    }
    if (works.length === 0) return failed;
    const signed = await this.signCosign(client, event.repository, subject.digest, signatureRef, works);
    // Rules with `bundle: true` also publish a Sigstore bundle, once their cosign signature is
    // in place; a rule whose bundle fails has failed (a re-delivery finds the signature present
    // and writes only the bundle).
    const bundled = signed.filter(({ work, outcome }) => work.rule.bundle && outcome.status !== 'failed');
    if (bundled.length === 0) return [...failed, ...signed.map(({ outcome }) => outcome)];
    const bundles = await this.publishBundles(
      client,
      event.repository,
      subject,
      bundled.map(({ work }) => work),
    );
    return [
      ...failed,
      ...signed.map(({ work, outcome }): RuleOutcome => {
        const bundle = bundles.outcomes.get(work.rule.name);
        if (bundle === undefined) return outcome;
        if (bundle.$case === 'failed') return { ...outcome, status: 'failed', ...errorFields(bundle.error) };
        const bundleRef = bundles.written.get(work.rule.name);
        return {
          ...outcome,
          // Signed when anything was written for the rule: the cosign signature or the bundle.
          status: outcome.status === 'signed' || bundle.$case === 'written' ? 'signed' : 'already-signed',
          bundle: bundle.$case,
          ...(bundleRef !== undefined ? { bundleRef } : {}),
        };
      }),
    ];
  }

  /** The cosign `.sig` layer of every rule, in one publish; each rule's outcome. */
  private async signCosign(
    client: RegistryClient,
    repository: string,
    digest: string,
    signatureRef: string,
    works: readonly RuleWork[],
  ): Promise<{ work: RuleWork; outcome: RuleOutcome }[]> {
    const outcome = (work: RuleWork, status: RuleOutcome['status'], error?: unknown): RuleOutcome =>
      ruleOutcome(work.rule, digest, signatureRef, work.keyId, status, error);
    let published: ReadonlyMap<string, CandidateOutcome>;
    try {
      const candidates = works.map((w) => w.candidate);
      const result = await this.publisher.publish(client, repository, digest, candidates);
      published = new Map(result.outcomes.map((o) => [o.id, o]));
    } catch (error) {
      return works.map((work) => ({ work, outcome: outcome(work, 'failed', error) }));
    }
    return works.map((work) => {
      const result = published.get(work.candidate.id);
      if (result === undefined) return { work, outcome: outcome(work, 'failed', NO_OUTCOME) };
      switch (result.$case) {
        case 'written':
          return { work, outcome: outcome(work, 'signed') };
        case 'present':
          return { work, outcome: outcome(work, 'already-signed') };
        case 'failed':
          return { work, outcome: outcome(work, 'failed', result.error) };
      }
    });
  }

  /** The Sigstore bundles of `works`, by rule name; a publish that throws fails them all. */
  private async publishBundles(
    client: RegistryClient,
    repository: string,
    subject: Descriptor,
    works: readonly RuleWork[],
  ): Promise<{ outcomes: ReadonlyMap<string, CandidateOutcome>; written: ReadonlyMap<string, string> }> {
    const candidates = works.map(({ rule, key, candidate, services }): BundleCandidate => ({
      id: rule.name,
      publicKey: candidate.publicKey,
      algorithm: rule.algorithm,
      signer: () => key.signer(rule.algorithm),
      ...(services === undefined
        ? {}
        : {
            prove: (envelope) => services.proveEnvelope(envelope, candidate.publicKey),
            requires: { tlogEntry: services.log !== undefined, timestamp: services.timestamps !== undefined },
          }),
    }));
    try {
      const result = await this.bundles.publish(client, repository, subject, candidates);
      return { outcomes: new Map(result.outcomes.map((o) => [o.id, o])), written: result.written };
    } catch (error) {
      const failed = candidates.map(({ id }): [string, CandidateOutcome] => [
        id,
        { $case: 'failed', id, error },
      ]);
      return { outcomes: new Map(failed), written: new Map() };
    }
  }
}

/** A publisher that left a candidate without an outcome (a bug), reported as a failure. */
const NO_OUTCOME = new Error('no outcome recorded');
