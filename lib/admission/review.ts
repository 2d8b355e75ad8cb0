/**
 * Reads a Kubernetes `admission.k8s.io/v1` AdmissionReview as the apiserver sends it, and finds
 * every container image in its object: Pods, every kind with a pod template (Deployment,
 * ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController), and the
 * `pods/ephemeralcontainers` subresource; containers, initContainers and ephemeralContainers.
 * Each image comes with its JSON pointer (for patches) and its field path (for messages).
 */
import { InputError } from '../core/errors';
import { isObject } from '../core/json';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';
const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT'];

/** A Kubernetes group/version/kind. */
export interface GroupVersionKind {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
}

/** The parts of an AdmissionReview request Signet decides on. */
export interface AdmissionRequest {
  readonly uid: string;
  readonly kind: GroupVersionKind;
  readonly subResource: string | undefined;
  readonly operation: Operation;
  /** The request's namespace, else the object's `metadata.namespace`. */
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly dryRun: boolean;
  readonly object: unknown;
  readonly oldObject: unknown;
}

/** One container image in the object. */
export interface ImageSite {
  /** RFC 6901 pointer: `/spec/template/spec/containers/0/image`. */
  readonly pointer: string;
  /** For people: `spec.template.spec.containers[0].image`. */
  readonly field: string;
  /** The image string as written (when it is a string). */
  readonly image: string;
  /** Set when the value is not a string: the site is denied, never verified. */
  readonly problem: string | undefined;
  /** UPDATE only: `oldObject` has the same image at the same place. */
  readonly unchanged: boolean;
}

/** What the object holds: images to check, or a reason there is nothing Signet checks. */
export type Extraction =
  | {
      readonly $case: 'images';
      readonly sites: readonly ImageSite[];
      /** Malformed parts of the object (a container list that is not a list): each denies. */
      readonly problems: readonly { readonly field: string; readonly message: string }[];
    }
  | { readonly $case: 'unsupported'; readonly kind: string };

const invalid = (field: string, message: string): InputError =>
  new InputError('ADMISSION_REVIEW_INVALID', field, message);

const MAX_UID_LENGTH = 256;

/**
 * Parses the envelope of an AdmissionReview; throws InputError ADMISSION_REVIEW_INVALID naming the
 * field when it cannot be answered (no uid, wrong apiVersion, unknown operation). The object itself
 * is read by `extractImages`, whose problems deny instead of failing the call.
 */
export function parseAdmissionReview(body: unknown): AdmissionRequest {
  if (!isObject(body)) throw invalid('body', 'must be a JSON object (an AdmissionReview)');
  if (body.apiVersion !== ADMISSION_API_VERSION) {
    throw invalid(
      'apiVersion',
      `must be "${ADMISSION_API_VERSION}", got ${JSON.stringify(body.apiVersion) ?? 'nothing'}`,
    );
  }
  if (body.kind !== 'AdmissionReview') {
    throw invalid('kind', `must be "AdmissionReview", got ${JSON.stringify(body.kind) ?? 'nothing'}`);
  }
  const request = body.request;
  if (!isObject(request)) throw invalid('request', 'must be an object');
  const uid = request.uid;
  if (typeof uid !== 'string' || uid.length === 0 || uid.length > MAX_UID_LENGTH) {
    throw invalid('request.uid', `must be a non-empty string of at most ${MAX_UID_LENGTH} characters`);
  }
  const operation = request.operation;
  if (typeof operation !== 'string' || !OPERATIONS.includes(operation as Operation)) {
    throw invalid('request.operation', `must be one of ${OPERATIONS.join(', ')}`);
  }
  const kind = request.kind;
  if (!isObject(kind) || typeof kind.kind !== 'string' || kind.kind.length === 0) {
    throw invalid('request.kind', 'must be an object with a kind');
  }
  const optionalString = (field: string): string | undefined => {
    const value = request[field];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw invalid(`request.${field}`, 'must be a string');
    return value;
  };
  const subResource = optionalString('subResource');
  const name = optionalString('name');
  let namespace = optionalString('namespace');
  const dryRun = request.dryRun;
  if (dryRun !== undefined && dryRun !== null && typeof dryRun !== 'boolean') {
    throw invalid('request.dryRun', 'must be a boolean');
  }
  const object = request.object ?? undefined;
  if ((operation === 'CREATE' || operation === 'UPDATE') && !isObject(object)) {
    throw invalid('request.object', `must be an object for ${operation}`);
  }
  if (namespace === undefined && isObject(object) && isObject(object.metadata)) {
    const ns = object.metadata.namespace;
    if (typeof ns === 'string' && ns !== '') namespace = ns;
  }
  // Pods created by a controller have no name yet at admission: `generateName` is what names them.
  let objectName = name;
  if (objectName === undefined && isObject(object) && isObject(object.metadata)) {
    const { name: metaName, generateName } = object.metadata;
    if (typeof metaName === 'string' && metaName !== '') objectName = metaName;
    else if (typeof generateName === 'string' && generateName !== '') objectName = `${generateName}*`;
  }
  return {
    uid,
    kind: {
      group: typeof kind.group === 'string' ? kind.group : '',
      version: typeof kind.version === 'string' ? kind.version : '',
      kind: kind.kind,
    },
    subResource,
    operation: operation as Operation,
    namespace,
    name: objectName,
    dryRun: dryRun === true,
    object,
    oldObject: request.oldObject ?? undefined,
  };
}

/** Where the pod spec sits in each supported kind (by `group/kind`; the core group is ''). */
const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  '/Pod': ['spec'],
  '/ReplicationController': ['spec', 'template', 'spec'],
  'apps/Deployment': ['spec', 'template', 'spec'],
  'apps/ReplicaSet': ['spec', 'template', 'spec'],
  'apps/StatefulSet': ['spec', 'template', 'spec'],
  'apps/DaemonSet': ['spec', 'template', 'spec'],
  'extensions/Deployment': ['spec', 'template', 'spec'],
  'extensions/ReplicaSet': ['spec', 'template', 'spec'],
  'extensions/DaemonSet': ['spec', 'template', 'spec'],
  'batch/Job': ['spec', 'template', 'spec'],
  'batch/CronJob': ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  // Kubernetes 1.16-1.21 sent the pods/ephemeralcontainers subresource as this kind.
  '/EphemeralContainers': [],
};

export const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;

/** RFC 6901: `~` → `~0`, `/` → `~1`. */
export const escapePointer = (segment: string): string => segment.replace(/~/g, '~0').replace(/\//g, '~1');

const pointerOf = (segments: readonly (string | number)[]): string =>
  segments.map((s) => `/${escapePointer(String(s))}`).join('');

const fieldOf = (segments: readonly (string | number)[]): string =>
  segments.reduce<string>(
    (out, s) => (typeof s === 'number' ? `${out}[${s}]` : out === '' ? s : `${out}.${s}`),
    '',
  );

/** The value at `segments` in `root`, or undefined. */
function at(root: unknown, segments: readonly (string | number)[]): unknown {
  let node = root;
  for (const s of segments) {
    if (typeof s === 'number') {
      if (!Array.isArray(node)) return undefined;
      node = node[s];
    } else {
      if (!isObject(node)) return undefined;
      node = node[s];
    }
  }
  return node;
}

/**
 * Every container image of the request's object. The `pods/ephemeralcontainers` subresource can
 * only add ephemeral containers, so only those are read for it.
 */
export function extractImages(request: AdmissionRequest): Extraction {
  const { group, kind } = request.kind;
  const specPath = POD_SPEC_PATHS[`${group}/${kind}`];
  if (specPath === undefined)
    return { $case: 'unsupported', kind: `${group === '' ? '' : `${group}/`}${kind}` };
  const lists =
    request.subResource === 'ephemeralcontainers' || kind === 'EphemeralContainers'
      ? (['ephemeralContainers'] as const)
      : CONTAINER_LISTS;
  const sites: ImageSite[] = [];
  const problems: { field: string; message: string }[] = [];
  const spec = at(request.object, specPath);
  if (!isObject(spec)) {
    problems.push({ field: fieldOf(specPath) || 'object', message: `${kind} has no pod spec here` });
    return { $case: 'images', sites, problems };
  }
  for (const list of lists) {
    const listPath = [...specPath, list];
    const containers = spec[list];
    if (containers === undefined || containers === null) continue;
    if (!Array.isArray(containers)) {
      problems.push({ field: fieldOf(listPath), message: 'must be a list of containers' });
      continue;
    }
    containers.forEach((container, index) => {
      const path = [...listPath, index, 'image'];
      if (!isObject(container)) {
        problems.push({ field: fieldOf([...listPath, index]), message: 'must be a container object' });
        return;
      }
      const image = container.image;
      // No image at all is Kubernetes validation's business (it rejects it); nothing to verify.
      if (image === undefined || image === null) return;
      const old = request.operation === 'UPDATE' ? at(request.oldObject, path) : undefined;
      sites.push({
        pointer: pointerOf(path),
        field: fieldOf(path),
        image: typeof image === 'string' ? image : JSON.stringify(image),
        problem: typeof image === 'string' ? undefined : `must be a string, got ${typeof image}`,
        unchanged: typeof image === 'string' && old === image,
      });
    });
  }
  return { $case: 'images', sites, problems };
}
