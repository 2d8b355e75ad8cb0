/**
 * Keyless identities: what a Fulcio certificate says about its signer (OIDC issuer, subject,
 * GitHub workflow claims) and whether that is what a keyless witness requires.
 */
import { ASN1Obj, type X509Certificate } from '@sigstore/core';
import { ConfigError, type FieldIssue } from '../core/errors';
import { compilePattern, validatePattern } from './pattern';
import { failure, type KeylessPolicy, type SigstoreFailure, type WorkflowClaims } from './types';

/** The identity a Fulcio certificate asserts. */
export interface CertificateIdentity {
  readonly issuer: string | undefined;
  readonly subject: string | undefined;
  readonly claims: WorkflowClaims;
}

/** A keyless witness as written in configuration, before it is checked. */
export interface KeylessPolicyInput {
  readonly issuer?: unknown;
  readonly subject?: unknown;
  readonly subjectRegExp?: unknown;
  readonly github?: { readonly repository?: unknown; readonly ref?: unknown; readonly trigger?: unknown };
}

// Fulcio's extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md). The
// 1.1-1.6 ones hold raw strings and are deprecated; 1.8 and later hold DER UTF8Strings.
const OID = {
  issuerV1: '1.3.6.1.4.1.57264.1.1',
  triggerV1: '1.3.6.1.4.1.57264.1.2',
  repositoryV1: '1.3.6.1.4.1.57264.1.5',
  refV1: '1.3.6.1.4.1.57264.1.6',
  issuer: '1.3.6.1.4.1.57264.1.8',
  sourceRepositoryUri: '1.3.6.1.4.1.57264.1.12',
  sourceRepositoryRef: '1.3.6.1.4.1.57264.1.14',
  buildTrigger: '1.3.6.1.4.1.57264.1.20',
} as const;

const GITHUB = 'https://github.com/';

function rawExtension(cert: X509Certificate, oid: string): string | undefined {
  return cert.extension(oid)?.value.toString('utf8');
}

function derExtension(cert: X509Certificate, oid: string): string | undefined {
  const ext = cert.extension(oid);
  if (ext === undefined) return undefined;
  try {
    return ASN1Obj.parseBuffer(Buffer.from(ext.value)).value.toString('utf8');
  } catch {
    return undefined;
  }
}

/** Reads the issuer, subject and workflow claims of a Fulcio certificate (newer extensions first). */
export function certificateIdentity(cert: X509Certificate): CertificateIdentity {
  const sourceRepository = derExtension(cert, OID.sourceRepositoryUri);
  return {
    issuer: derExtension(cert, OID.issuer) ?? rawExtension(cert, OID.issuerV1),
    subject: cert.subjectAltName,
    claims: {
      repository:
        rawExtension(cert, OID.repositoryV1) ??
        (sourceRepository?.startsWith(GITHUB) ? sourceRepository.slice(GITHUB.length) : undefined),
      ref: rawExtension(cert, OID.refV1) ?? derExtension(cert, OID.sourceRepositoryRef),
      trigger: rawExtension(cert, OID.triggerV1) ?? derExtension(cert, OID.buildTrigger),
    },
  };
}

/** Undefined when `identity` is what `policy` requires, else the IDENTITY_MISMATCH saying what differs. */
export function checkIdentity(
  identity: CertificateIdentity,
  policy: KeylessPolicy,
): SigstoreFailure | undefined {
  if (identity.issuer !== policy.issuer) {
    return failure('IDENTITY_MISMATCH', `issuer is "${identity.issuer ?? '(none)'}", not "${policy.issuer}"`);
  }
  const subject = identity.subject;
  switch (policy.subject.$case) {
    case 'exact':
      if (subject !== policy.subject.subject) {
        return failure(
          'IDENTITY_MISMATCH',
          `subject is "${subject ?? '(none)'}", not "${policy.subject.subject}"`,
        );
      }
      break;
    case 'pattern':
      if (subject === undefined || !policy.subject.pattern.test(subject)) {
        return failure(
          'IDENTITY_MISMATCH',
          `subject "${subject ?? '(none)'}" does not match /${policy.subject.pattern.source}/`,
        );
      }
      break;
  }
  for (const claim of ['repository', 'ref', 'trigger'] as const) {
    const required = policy.claims[claim];
    if (required !== undefined && identity.claims[claim] !== required) {
      return failure(
        'IDENTITY_MISMATCH',
        `workflow ${claim} is "${identity.claims[claim] ?? '(none)'}", not "${required}"`,
      );
    }
  }
  return undefined;
}

/**
 * Checks a keyless witness's configuration and fills it into a `KeylessPolicy`, compiling the
 * subject pattern once. Throws ConfigError CONFIG_INVALID listing every bad field under `path`.
 */
export function keylessPolicy(input: KeylessPolicyInput, path = 'keyless'): KeylessPolicy {
  const issues: FieldIssue[] = [];
  const text = (value: unknown, field: string): string | undefined => {
    if (value === undefined) return undefined;
    if (typeof value === 'string' && value.length > 0) return value;
    issues.push({ path: `${path}.${field}`, message: 'must be a non-empty string' });
    return undefined;
  };
  const issuer = text(input.issuer, 'issuer');
  if (input.issuer === undefined) issues.push({ path: `${path}.issuer`, message: 'is required' });
  const subject = text(input.subject, 'subject');
  const pattern = text(input.subjectRegExp, 'subjectRegExp');
  if ((input.subject === undefined) === (input.subjectRegExp === undefined)) {
    issues.push({ path, message: 'give exactly one of subject and subjectRegExp' });
  }
  const problem = pattern === undefined ? undefined : validatePattern(pattern);
  if (problem !== undefined) issues.push({ path: `${path}.subjectRegExp`, message: problem });
  const github = input.github ?? {};
  const claims: WorkflowClaims = {
    repository: text(github.repository, 'github.repository'),
    ref: text(github.ref, 'github.ref'),
    trigger: text(github.trigger, 'github.trigger'),
  };
  if (issues.length > 0 || issuer === undefined) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `${path}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      {
        issues,
      },
    );
  }
  return {
    issuer,
    subject:
      pattern !== undefined
        ? { $case: 'pattern', pattern: compilePattern(pattern) }
        : { $case: 'exact', subject: subject as string },
    claims,
  };
}
