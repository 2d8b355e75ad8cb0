import type { SignetConfig, SigningRule, Trigger } from '../config/types';
import { ConfigError, describeError } from '../core/errors';
import type { Logger } from '../core/logger';
import { isSignatureArtifactTag, repositoryName, signatureTag, type ImageReference } from '../core/reference';
import { buildPayload, PAYLOAD_ANNOTATIONS } from '../cosign/payload';
import { isSignatureArtifact, isSignatureArtifactType } from '../cosign/signature-manifest';
import type { PushEvent } from '../events/types';
import type { KeyRing } from '../keys/keyring';
import type { WitnessKey } from '../keys/types';
import type { Descriptor, FetchedManifest, RegistryClient, RegistryClientFactory } from '../registry/types';
import { isIndexMediaType } from '../registry/types';
import { BundlePublisher, type BundleCandidate } from './bundle-publisher';
import { RuleSet } from './rules';
import { SignaturePublisher, type CandidateOutcome, type SignatureCandidate } from './publisher';

/** What happened for one (rule, digest) pair. */
export interface RuleOutcome {
  readonly rule: string;
  readonly witness: string;
  readonly algorithm: string;
  readonly signatureType: string;
  readonly digest: string;
  readonly status: 'signed' | 'already-signed' | 'failed';
  /** Where the signature lives: `registry/repository:sha256-<hex>.sig`. */
  readonly signatureRef: string;
  readonly keyId: string | undefined;
  /** For a rule with `bundle: true`: whether its Sigstore bundle was written now or found. */
  readonly bundle?: 'written' | 'present';
  /** Where a bundle written now lives: `registry/repository@<referrer manifest digest>`. */
  readonly bundleRef?: string;
  readonly error?: string;
  readonly errorCode?: string;
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

/** What a push would take: the rules that sign it, or why nothing will. */
export type PushPlan =
  | { readonly $case: 'sign'; readonly rules: readonly SigningRule[] }
  | { readonly $case: 'skip'; readonly reason: string };

/** The `skipped` reason of a push naming a registry host that `registries[]` does not list. */
export const REGISTRY_NOT_CONFIGURED = 'registry not configured';

export const reportFailed = (report: SigningReport): boolean =>
  report.outcomes.some((o) => o.status === 'failed');

export interface SigningPipelineDeps {
  readonly config: SignetConfig;
  readonly registries: RegistryClientFactory;
  readonly keys: KeyRing;
  readonly logger: Logger;
  readonly publisher?: SignaturePublisher;
  readonly bundles?: BundlePublisher;
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

  /** Handles a push notification (automatic trigger). */
  handlePush(event: PushEvent): Promise<SigningReport> {
    return this.run(event, 'automatic');
  }

  /**
   * Signs an image already in the registry (`signet sign`): the rules covering it, of either
   * trigger, or exactly the named rule. A tag reference is resolved to its digest first.
   */
  async signImage(ref: ImageReference, ruleName?: string): Promise<SigningReport> {
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
    );
  }

  /**
   * What a push would take, decided without the network: signature artifacts and hosts outside
   * `registries[]` are skipped, and so are repositories no (enabled, on-push) rule covers.
   */
  plan(event: PushEvent, trigger: Trigger = 'automatic', ruleName?: string): PushPlan {
    if (isSignatureArtifactTag(event.tag)) return { $case: 'skip', reason: 'signature artifact tag' };
    if (isSignatureArtifactType(event.artifactType) || isSignatureArtifactType(event.mediaType)) {
      return { $case: 'skip', reason: `signature artifact type ${event.artifactType ?? event.mediaType}` };
    }
    // A host outside registries[] is never contacted, whatever the event says.
    if (!this.rules.isConfigured(event.registry)) return { $case: 'skip', reason: REGISTRY_NOT_CONFIGURED };
    const rules = this.rules.matching(event, trigger, ruleName);
    if (rules.length === 0) return { $case: 'skip', reason: 'no signing rule covers this repository' };
    return { $case: 'sign', rules };
  }

  private async run(event: PushEvent, trigger: Trigger, ruleName?: string): Promise<SigningReport> {
    const started = performance.now();
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

    const plan = this.plan(event, trigger, ruleName);
    if (plan.$case === 'skip') return skip(plan.reason);
    const rules = plan.rules;

    let outcomes: RuleOutcome[];
    try {
      const client = this.deps.registries.client(event.registry);
      const fetched = await client.getManifest(event.repository, event.digest);
      if (fetched === undefined) return skip('manifest no longer exists');
      if (isSignatureArtifact(fetched.manifest)) return skip('signature artifact manifest');

      const targets = signingTargets(event.digest, fetched, rules);
      outcomes = (
        await Promise.all(
          targets.map(({ subject, rules: digestRules }) =>
            this.signDigest(client, event, subject, digestRules),
          ),
        )
      ).flat();
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

  /** Every rule of one digest: the cosign signatures first, then the bundles of the rules that ask. */
  private async signDigest(
    client: RegistryClient,
    event: PushEvent,
    subject: Descriptor,
    rules: readonly SigningRule[],
  ): Promise<RuleOutcome[]> {
    const signatureRef = `${event.registry}/${event.repository}:${signatureTag(subject.digest)}`;
    const prepared = await Promise.all(rules.map((rule) => this.prepare(rule, event, subject.digest)));
    const failed: RuleOutcome[] = [];
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
  private async prepare(rule: SigningRule, event: PushEvent, digest: string): Promise<Prepared> {
    try {
      const key = this.deps.keys.get(rule.witness);
      const [signer, publicKey, keyId] = await Promise.all([
        key.signer(rule.algorithm),
        key.publicKey(),
        key.keyId(),
      ]);
      const payload = buildPayload({
        registry: event.registry,
        repository: event.repository,
        digest,
        tag: rule.signatureType === 'default' ? event.tag : undefined,
        annotations: {
          ...rule.annotations,
          [PAYLOAD_ANNOTATIONS.rule]: rule.name,
          [PAYLOAD_ANNOTATIONS.witness]: rule.witness,
          [PAYLOAD_ANNOTATIONS.keyId]: keyId,
        },
      });
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
      };
      if (outcome.status === 'failed') this.deps.logger.error('signing failed', fields);
      else this.deps.logger.info(outcome.status === 'signed' ? 'image signed' : 'already signed', fields);
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

/** A publisher that left a candidate without an outcome (a bug), reported as a failure. */
const NO_OUTCOME = new Error('no outcome recorded');

function errorFields(error: unknown): { error: string; errorCode: string } {
  return { error: describeError(error), errorCode: (error as { code?: string }).code ?? 'INTERNAL' };
}
