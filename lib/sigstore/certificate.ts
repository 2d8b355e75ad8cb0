/**
 * Certificate witnesses: a signature by a certificate that chains to configured roots and was
 * valid when the signature was made, instead of the configured leaf's key trusted blindly.
 *
 * The signing time is the earliest verified one: a Rekor entry (SET) or an RFC 3161 timestamp,
 * checked against the witness's `evidence` trusted root (public-good by default in Signet's
 * config, or a private one). Without evidence the time is the verification time, as cosign does
 * for a certificate without a log entry, unless the witness requires a signed time.
 */
import type { KeyObject } from 'node:crypto';
import { dsse } from '@sigstore/core';
import type { SignedEntity } from '@sigstore/verify';
import { ConfigError, type FieldIssue } from '../core/errors';
import { algorithmsFor, shapeOf, verifySignature } from '../keys/algorithms';
import { allowsCodeSigning, findPath, isSelfSigned, toCert, type Cert } from './chain';
import { checkEvidence, checkLogNamesSigner, publicKeyOf, type SignedTime } from './evidence';
import { parsePemCertificates, prepareSignature } from './material';
import {
  failure,
  isFailure,
  type CertificateVerdict,
  type SignatureMaterial,
  type SignedContent,
  type TimeSource,
  type TrustedRoot,
} from './types';

/** A certificate witness as configured: PEM texts (the config loader reads the files). */
export interface CertificateWitnessInput {
  /** Trust anchors (PEM, one or more certificates). */
  readonly roots?: string;
  /** Intermediates, optionally ending with the root (cosign's `--certificate-chain`). */
  readonly certificateChain?: string;
  /** The signing certificate itself, when the witness pins it. */
  readonly certificate?: string;
  /** Verifies Rekor entries and RFC 3161 timestamps that give the signing time. */
  readonly evidence?: TrustedRoot;
  /** Deny signatures without a verified signing time (no fallback to the verification time). */
  readonly requireSignedTime?: boolean;
}

/** A certificate witness, fully specified (see `certificateTrust`). */
export interface CertificateTrust {
  readonly anchors: readonly Cert[];
  readonly intermediates: readonly Cert[];
  readonly pinned: Cert | undefined;
  readonly evidence: TrustedRoot | undefined;
  readonly requireSignedTime: boolean;
}

type SignatureContent = SignedEntity['signature'];

/**
 * Checks a certificate witness's configuration. Anchors are `roots` plus the self-signed
 * certificates of `certificateChain`; its other certificates are trusted intermediates. A
 * witness with only `certificate` pins that certificate (it is its own anchor). Throws ConfigError
 * CONFIG_INVALID listing every bad field under `path`.
 */
export function certificateTrust(input: CertificateWitnessInput, path = 'witness'): CertificateTrust {
  const issues: FieldIssue[] = [];
  const certs = (pem: string | undefined, field: string): Cert[] => {
    if (pem === undefined) return [];
    try {
      return parsePemCertificates(pem).map(toCert);
    } catch (err) {
      issues.push({
        path: `${path}.${field}`,
        message: `is not PEM certificates: ${(err as Error).message}`,
      });
      return [];
    }
  };
  const roots = certs(input.roots, 'roots');
  const chain = certs(input.certificateChain, 'certificateChain');
  const pinned = certs(input.certificate, 'certificate')[0];
  const anchors = [...roots, ...chain.filter(isSelfSigned)];
  if (issues.length === 0 && anchors.length === 0 && pinned === undefined) {
    issues.push({ path, message: 'needs roots, a certificateChain that ends in a root, or a certificate' });
  }
  if (issues.length > 0) {
    throw new ConfigError(
      'CONFIG_INVALID',
      `${path}: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      {
        issues,
      },
    );
  }
  return {
    anchors: anchors.length > 0 ? anchors : [pinned as Cert],
    intermediates: chain.filter((c) => !isSelfSigned(c)),
    pinned,
    evidence: input.evidence,
    requireSignedTime: input.requireSignedTime ?? false,
  };
}

/**
 * Verifies one signature against a certificate witness: the signature with the leaf's key (every
 * algorithm Signet supports: RSA PKCS#1 v1.5 and PSS, ECDSA), the signing time from verified
 * evidence, and a path from the leaf to an anchor valid at that time. Never throws.
 */
export function verifyCertificateChain(
  material: SignatureMaterial,
  trust: CertificateTrust,
  now: Date = new Date(),
): CertificateVerdict {
  try {
    return certificate(material, trust, now);
  } catch (err) {
    return failure(
      'MATERIAL_INVALID',
      `cannot be verified: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function certificate(material: SignatureMaterial, trust: CertificateTrust, now: Date): CertificateVerdict {
  const prepared = prepareSignature(material);
  if (isFailure(prepared)) return prepared;
  const presented = prepared.leaf === undefined ? undefined : toCert(prepared.leaf);
  const leaf = presented ?? trust.pinned;
  if (leaf === undefined) return failure('MATERIAL_INVALID', 'the signature carries no certificate');
  if (presented !== undefined && trust.pinned !== undefined && !presented.der.equals(trust.pinned.der)) {
    return failure('CHAIN_UNTRUSTED', "the signature's certificate is not the witness's certificate");
  }
  const key = publicKeyOf(leaf.parsed);
  const entity: SignedEntity = {
    ...prepared.entity,
    signature: anyAlgorithm(prepared.entity.signature, prepared.content),
  };

  let times: readonly SignedTime[] = [];
  if (trust.evidence !== undefined) {
    const checked = checkEvidence(entity, key, trust.evidence.material, {
      tlogEntries: 0,
      timestamps: trust.requireSignedTime ? 1 : 0,
    });
    if (isFailure(checked)) return checked;
    times = checked;
  } else if (!entity.signature.verifySignature(key)) {
    return failure('SIGNATURE_INVALID', "the signature does not verify with the certificate's key");
  } else if (trust.requireSignedTime) {
    return failure(
      'TIMESTAMP_MISSING',
      'the witness requires a signed time but has no trusted root to check one',
    );
  }

  if (!allowsCodeSigning(leaf)) {
    return failure('CHAIN_UNTRUSTED', 'the certificate is not for code signing (extended key usage)');
  }
  const at = times.length > 0 ? times.map((t) => t.at) : [now];
  const chain = prepared.presentedChain.map(toCert);
  const result = findPath(leaf, [...trust.intermediates, ...chain], trust.anchors, at);
  switch (result.$case) {
    case 'untrusted':
      return failure('CHAIN_UNTRUSTED', result.detail);
    case 'expired':
      return failure(
        'CERT_EXPIRED_AT_SIGNING',
        `${result.cert === leaf ? 'the certificate' : 'a certificate of its chain'} is valid from ` +
          `${result.cert.parsed.notBefore.toISOString()} to ${result.cert.parsed.notAfter.toISOString()}, ` +
          `not at ${result.at.toISOString()} (${times.length > 0 ? 'signing time' : 'verification time'})`,
      );
    case 'trusted': {
      const unlogged = checkLogNamesSigner(entity, key, leaf.parsed);
      if (unlogged !== undefined) return unlogged;
      const first = times.reduce<SignedTime | undefined>(
        (a, b) => (a === undefined || b.at < a.at ? b : a),
        undefined,
      );
      const timeSource: TimeSource = first?.source ?? 'verification-time';
      return {
        ok: true,
        key,
        subject: leaf.parsed.subjectAltName,
        signedAt: first?.at ?? now,
        timeSource,
        content: prepared.content,
      };
    }
  }
}

/** The bytes a signature covers: the blob, or the DSSE pre-authentication encoding. */
function signedBytes(content: SignedContent): Buffer {
  switch (content.$case) {
    case 'message':
      return content.data;
    case 'dsse':
      return dsse.preAuthEncoding(content.payloadType, content.payload);
  }
}

/** `content`, with its signature checked under every algorithm that fits the key (not only SHA-256). */
export function anyAlgorithm(content: SignatureContent, signed: SignedContent): SignatureContent {
  const data = signedBytes(signed);
  return {
    signature: content.signature,
    compareSignature: (signature) => content.compareSignature(signature),
    compareDigest: (digest) => content.compareDigest(digest),
    verifySignature: (key: KeyObject) => {
      try {
        return algorithmsFor(shapeOf(key)).some((a) => verifySignature(key, a, data, content.signature));
      } catch {
        return false;
      }
    },
  };
}
