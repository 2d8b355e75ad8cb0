import type { SignetConfig, SigningRule, Trigger } from '../config/types';
import { ConfigError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { isSignatureArtifactTag, repositoryName, signatureTag, type ImageReference } from '../core/reference';
import { buildPayload, PAYLOAD_ANNOTATIONS } from '../cosign/payload';
import { isSignatureArtifact, isSignatureArtifactType } from '../cosign/signature-manifest';
import type { PushEvent, ScanEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { WitnessKey } from '../keys/types';
import type { Descriptor, FetchedManifest, RegistryClient, RegistryClientFactory } from '../registry/types';
import { isIndexMediaType } from '../registry/types';
import { BundlePublisher, type BundleCandidate } from './bundle-publisher';
import {
  CONDITION_ANNOTATIONS,
  CONDITION_UNAVAILABLE,
  countersignAnnotation,
  evaluateLocal,
  pushOfScan,
  triggers,
  type ConditionChecker,
  type Evaluation,
  type PushContext,
  type UnmetCondition,
} from './conditions';
import { signedWitnesses } from './presence';
import { RuleSet } from './rules';
import { SignaturePublisher, type CandidateOutcome, type SignatureCandidate } from './publisher';

/** What happened for one (rule, digest) pair. */
export interface RuleOutcome {
  readonly rule: string;
  readonly witness: string;
  readonly algorithm: string;
  readonly signatureType: string;
  readonly digest: string;
  /**
   * `not-signed`: a condition of the rule did not hold (`unmet` says which and why);
   * `waiting`: its scan result has not arrived (decided again at `waitUntil` or when it does).
   */
  readonly status: 'signed' | 'already-signed' | 'failed' | 'not-signed' | 'waiting';
  /** Where the signature lives: `registry/repository:sha256-<hex>.sig`. */
  readonly signatureRef: string;
  readonly keyId: string | undefined;
  /** For a rule with `bundle: true`: whether its Sigstore bundle was written now or found. */
  readonly bundle?: 'written' | 'present';
  /** Where a bundle written now lives: `registry/repository@<referrer manifest digest>`. */
  readonly bundleRef?: string;
  readonly error?: string;
  readonly errorCode?: string;
  /** For `not-signed` and `waiting`: the condition that did not hold. */
  readonly unmet?: UnmetCondition;
  /** For `waiting`: when the scan wait ends (epoch ms). */
  readonly waitUntil?: number;
}

/** The whole result of handling one push (or one manual sign). */
export interface SigningReport {
  /** `registry/repository[:tag]@digest` */
  readonly image: string;
  readonly registry: string;
  readonly repository: string;
  readonly digest: string;
  readonly tag: string | undefined;
  /** Set when nothing was attempted, with the reason. */
  readonly skipped: string | undefined;
  readonly outcomes: readonly RuleOutcome[];
  readonly durationMs: number;
}

/**
 * What a push would take: the rules that sign it, or why nothing will. A signature pushed for a
 * digest (`sha256-<hex>.sig`) re-drives that digest for the countersigning rules (`redrive`):
 * copy tools push an image before its signatures, and the signature's arrival is what lets a
 * `signedBy` condition hold.
 */
export type PushPlan =
  | { readonly $case: 'sign'; readonly rules: readonly SigningRule[]; readonly redrive?: PushEvent }
  | { readonly $case: 'skip'; readonly reason: string };

/** The `skipped` reason for a digest the registry does not (or no longer) hold. */
export const MANIFEST_GONE = 'manifest no longer exists';

/** The `skipped` reason of a push naming a registry host that `registries[]` does not list. */
export const REGISTRY_NOT_CONFIGURED = 'registry not configured';

export const reportFailed = (report: SigningReport): boolean =>
  report.outcomes.some((o) => o.status === 'failed');

/** The outcomes of rules whose conditions did not hold (each an `Image Not Signed`). */
export const notSigned = (report: SigningReport): RuleOutcome[] =>
  report.outcomes.filter((o) => o.status === 'not-signed');

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
}

/** Finds the scan result of an image already in the registry (`signet sign`, backfill). */
export interface ScanLookup {
  scanResult(registry: string, repository: string, digest: string): Promise<PushContext['scan']>;
}

/**
 * Push → matching rules → payload → signature → `.sig` layer. Idempotent: a push delivered twice,
 * or a tag pushed again, costs a manifest read and no signing.
 */
export class SigningPipeline {
  private readonly rules: RuleSet;
  private readonly publisher: SignaturePublisher;
  private readonly bundles: BundlePublisher;

  constructor(private readonly deps: SigningPipelineDeps) {
    this.rules = new RuleSet(
      deps.config.signingRules,
      deps.config.registries.map((r) => r.host),
    );
    this.publisher = deps.publisher ?? new SignaturePublisher();
    this.bundles = deps.bundles ?? new BundlePublisher();
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
    return this.payload(rule, target.registry, target.repository, target.digest, tag, {}, keyId);
  }

  /**
   * What a push would take, decided without the network: signature artifacts and hosts outside
   * `registries[]` are skipped, and so are repositories no (enabled, on-push) rule covers.
   */
  plan(event: PushEvent, trigger: Trigger = 'automatic', ruleName?: string | readonly string[]): PushPlan {
    if (isSignatureArtifactTag(event.tag)) return this.planSignaturePush(event, trigger);
    if (isSignatureArtifactType(event.artifactType) || isSignatureArtifactType(event.mediaType)) {
      return { $case: 'skip', reason: `signature artifact type ${event.artifactType ?? event.mediaType}` };
    }
    // A host outside registries[] is never contacted, whatever the event says.
    if (!this.rules.isConfigured(event.registry)) return { $case: 'skip', reason: REGISTRY_NOT_CONFIGURED };
    const covering =
      typeof ruleName === 'object'
        ? this.rules.matching(event, trigger).filter((rule) => ruleName.includes(rule.name))
        : this.rules.matching(event, trigger, ruleName);
    if (covering.length === 0) return { $case: 'skip', reason: 'no signing rule covers this repository' };
    const rules = covering.filter((rule) => triggers(rule, event.source));
    if (rules.length === 0) {
      return {
        $case: 'skip',
        reason: `no signing rule covers this repository for a ${event.source} event (${describeTrigger(event.source)})`,
      };
    }
    return { $case: 'sign', rules };
  }

  /** A pushed `.sig`: the signed digest again, for the countersigning rules that cover it. */
  private planSignaturePush(event: PushEvent, trigger: Trigger): PushPlan {
    const skip: PushPlan = { $case: 'skip', reason: 'signature artifact tag' };
    const signed = /^sha256-([a-f0-9]{64})\.sig$/.exec(event.tag ?? '');
    if (signed === null || !this.rules.isConfigured(event.registry)) return skip;
    const rules = this.rules
      .matching(event, trigger)
      .filter((rule) => rule.conditions?.signedBy !== undefined && triggers(rule, event.source));
    if (rules.length === 0) return skip;
    const redrive: PushEvent = {
      ...event,
      digest: `sha256:${signed[1]}`,
      tag: undefined,
      mediaType: undefined,
      artifactType: undefined,
    };
    return { $case: 'sign', rules, redrive };
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
      const signedBefore = plan.redrive === undefined ? [] : await this.alreadySigned(client, event, rules);
      const pending = rules.filter((rule) => !signedBefore.some((o) => o.rule === rule.name));
      const targets = signingTargets(event.digest, fetched, pending);
      const scanned = await this.withScan(event, pending, context);
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
        this.outcome(rule, event.digest, signatureRef, undefined, 'failed', error),
      );
    }
    const report: SigningReport = {
      ...base,
      skipped: undefined,
      outcomes,
      durationMs: performance.now() - started,
    };
    this.log(report);
    return report;
  }

  /** The rules whose witness already has a valid signature for the digest, as `already-signed`. */
  private async alreadySigned(
    client: RegistryClient,
    event: PushEvent,
    rules: readonly SigningRule[],
  ): Promise<RuleOutcome[]> {
    const probes = await Promise.all(
      rules.map(async (rule) => ({
        witness: rule.witness,
        publicKey: await this.deps.keys.get(rule.witness).publicKey(),
      })),
    );
    const present = await signedWitnesses(client, event.repository, event.digest, probes);
    const signatureRef = `${event.registry}/${event.repository}:${signatureTag(event.digest)}`;
    return rules
      .filter((rule) => present.has(rule.witness))
      .map((rule) => this.outcome(rule, event.digest, signatureRef, undefined, 'already-signed'));
  }

  /**
   * The context with the scan result filled in for a manual sign whose rules need one: a push
   * waits for its scan's event, an image already in the registry asks the registry's scanner.
   */
  private async withScan(
    event: PushEvent,
    rules: readonly SigningRule[],
    context: PushContext,
  ): Promise<PushContext> {
    const lookup = this.deps.scans;
    if (context.scan !== undefined || event.source !== 'manual' || lookup === undefined) return context;
    if (!rules.some((rule) => rule.conditions?.scan !== undefined)) return context;
    const scan = await lookup.scanResult(event.registry, event.repository, event.digest);
    return scan === undefined ? context : { ...context, scan };
  }

  /**
   * Every rule's conditions on one digest, cheapest first: the pusher and the scan result are in
   * hand; another witness's signature costs registry reads, so it is checked last and only for
   * rules everything else allows.
   */
  private async evaluate(
    rule: SigningRule,
    event: PushEvent,
    digest: string,
    context: PushContext,
  ): Promise<Evaluation> {
    const local = evaluateLocal(rule, event, context, (this.deps.clock ?? Date.now)());
    const signedBy = rule.conditions?.signedBy;
    if (local.$case !== 'held' || signedBy === undefined) return local;
    const checker = this.deps.conditions;
    if (checker === undefined) {
      return { $case: 'error', code: 'INTERNAL', detail: 'no condition checker is wired for signedBy' };
    }
    const verdict = await checker.countersigned({
      registry: event.registry,
      repository: event.repository,
      digest,
      tag: event.tag,
      witnesses: signedBy,
      identity: rule.conditions?.signedIdentity ?? { type: 'matchRepository' },
    });
    switch (verdict.$case) {
      case 'held':
        return {
          $case: 'held',
          annotations: {
            ...local.annotations,
            [CONDITION_ANNOTATIONS.countersigns]: countersignAnnotation(verdict),
          },
        };
      case 'unmet':
        return {
          $case: 'unmet',
          unmet: {
            condition: 'signedBy',
            reason: 'NOT_COUNTERSIGNED',
            detail: `${verdict.code}: ${verdict.detail}`,
          },
        };
      case 'error':
        return { $case: 'error', code: CONDITION_UNAVAILABLE, detail: `${verdict.code}: ${verdict.detail}` };
    }
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
          return { rule, evaluation: await this.evaluate(rule, event, subject.digest, context) };
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
        ...this.outcome(rule, subject.digest, signatureRef, undefined, status),
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
      allowed.map(({ rule, annotations }) => this.prepare(rule, event, subject.digest, annotations)),
    );
    const failed: RuleOutcome[] = [...decided];
    const works: RuleWork[] = [];
    for (const entry of prepared) {
      if (entry.$case === 'ready') works.push(entry.work);
      else
        failed.push(this.outcome(entry.rule, subject.digest, signatureRef, undefined, 'failed', entry.error));
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
      this.outcome(work.rule, digest, signatureRef, work.keyId, status, error);
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
    const candidates = works.map(({ rule, key, candidate }): BundleCandidate => ({
      id: rule.name,
      publicKey: candidate.publicKey,
      algorithm: rule.algorithm,
      signer: () => key.signer(rule.algorithm),
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

  /** The rule's key, signer and payload for `digest`, or why the rule cannot sign. */
  private async prepare(
    rule: SigningRule,
    event: PushEvent,
    digest: string,
    conditions: Readonly<Record<string, string>>,
  ): Promise<Prepared> {
    try {
      const key = this.deps.keys.get(rule.witness);
      const [signer, publicKey, keyId] = await Promise.all([
        key.signer(rule.algorithm),
        key.publicKey(),
        key.keyId(),
      ]);
      const payload = this.payload(
        rule,
        event.registry,
        event.repository,
        digest,
        event.tag,
        conditions,
        keyId,
      );
      const candidate: SignatureCandidate = {
        id: rule.name,
        payload,
        publicKey,
        algorithm: rule.algorithm,
        sign: async (data) => (await signer.sign(data)).signature,
      };
      return { $case: 'ready', work: { rule, key, keyId, candidate } };
    } catch (error) {
      return { $case: 'failed', rule, error };
    }
  }

  /** The deterministic payload of one rule for one digest: the same inputs, the same bytes. */
  private payload(
    rule: SigningRule,
    registry: string,
    repository: string,
    digest: string,
    tag: string | undefined,
    conditions: Readonly<Record<string, string>>,
    keyId: string,
  ): Buffer {
    return buildPayload({
      registry,
      repository,
      digest,
      tag: rule.signatureType === 'default' ? tag : undefined,
      annotations: {
        ...rule.annotations,
        ...conditions,
        [PAYLOAD_ANNOTATIONS.rule]: rule.name,
        [PAYLOAD_ANNOTATIONS.witness]: rule.witness,
        [PAYLOAD_ANNOTATIONS.keyId]: keyId,
      },
    });
  }

  private outcome(
    rule: SigningRule,
    digest: string,
    signatureRef: string,
    keyId: string | undefined,
    status: RuleOutcome['status'],
    error?: unknown,
  ): RuleOutcome {
    return {
      rule: rule.name,
      witness: rule.witness,
      algorithm: rule.algorithm,
      signatureType: rule.signatureType,
      digest,
      status,
      signatureRef,
      keyId,
      ...(error !== undefined ? errorFields(error) : {}),
    };
  }

  private log(report: SigningReport): void {
    for (const outcome of report.outcomes) {
      const fields = {
        image: report.image,
        rule: outcome.rule,
        witness: outcome.witness,
        digest: outcome.digest,
        outcome: outcome.status,
        durationMs: Math.round(report.durationMs),
        ...(outcome.error !== undefined ? { cause: outcome.error, code: outcome.errorCode } : {}),
        ...(outcome.unmet !== undefined ? { ...outcome.unmet } : {}),
      };
      switch (outcome.status) {
        case 'failed':
          this.deps.logger.error('signing failed', fields);
          break;
        case 'not-signed':
          this.deps.logger.warn('image not signed', fields);
          break;
        case 'waiting':
          this.deps.logger.info('waiting for the scan result', {
            ...fields,
            until: new Date(outcome.waitUntil ?? 0).toISOString(),
          });
          break;
        case 'signed':
        case 'already-signed':
          this.deps.logger.info(outcome.status === 'signed' ? 'image signed' : 'already signed', fields);
          break;
      }
    }
  }
}

/**
 * The digests a push signs, each with its rules: the pushed manifest with every rule and, for an
 * index, each child manifest with the rules that are `recursive`.
 */
function signingTargets(
  digest: string,
  fetched: FetchedManifest,
  rules: readonly SigningRule[],
): { subject: Descriptor; rules: SigningRule[] }[] {
  const root: Descriptor = { mediaType: fetched.mediaType, digest, size: fetched.bytes.length };
  const targets = new Map([[digest, { subject: root, rules: [...rules] }]]);
  const children =
    isIndexMediaType(fetched.mediaType) && 'manifests' in fetched.manifest ? fetched.manifest.manifests : [];
  for (const rule of rules.filter((r) => r.recursive)) {
    for (const child of children) {
      const target = targets.get(child.digest) ?? { subject: child, rules: [] };
      target.rules.push(rule);
      targets.set(child.digest, target);
    }
  }
  return [...targets.values()];
}

/** One rule at work on one digest: the rule, its witness key and signer, and what it signs. */
interface RuleWork {
  readonly rule: SigningRule;
  readonly key: WitnessKey;
  readonly keyId: string;
  readonly candidate: SignatureCandidate;
}

/** A rule ready to sign, or the reason it cannot (its key is unusable, its algorithm does not fit). */
type Prepared =
  | { readonly $case: 'ready'; readonly work: RuleWork }
  | { readonly $case: 'failed'; readonly rule: SigningRule; readonly error: unknown };

/** Which rules an event of `source` decides, for the skip reason of an event that decides none. */
function describeTrigger(source: PushEvent['source']): string {
  switch (source) {
    case 'ecr':
      return 'rules with pushedBy are decided by the CloudTrail PutImage event';
    case 'cloudtrail':
      return 'it decides only rules with pushedBy';
    case 'scan':
      return 'it decides only rules with a scan condition and no pushedBy';
    case 'distribution':
    case 'harbor':
    case 'manual':
      return 'every rule';
  }
}

/** A publisher that left a candidate without an outcome (a bug), reported as a failure. */
const NO_OUTCOME = new Error('no outcome recorded');

function errorFields(error: unknown): { error: string; errorCode: string } {
  return { error: describeError(error), errorCode: (error as { code?: string }).code ?? 'INTERNAL' };
}
