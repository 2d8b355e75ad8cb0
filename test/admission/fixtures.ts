/** Loads the AdmissionReview fixtures (as the apiserver sends them), optionally rewriting registry hosts. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIXTURE_HOST = 'registry.example.com';

export type FixtureName =
  | 'pod-create'
  | 'pod-create-dryrun'
  | 'deployment-create'
  | 'deployment-update'
  | 'replicaset-create'
  | 'statefulset-create'
  | 'daemonset-create'
  | 'job-create'
  | 'cronjob-create'
  | 'replicationcontroller-create'
  | 'pod-ephemeralcontainers-update'
  | 'pod-delete'
  | 'pod-exec-connect';

/** A fresh copy of a fixture; `host` replaces the registry host of every image. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function fixture(name: FixtureName, host = FIXTURE_HOST): any {
  const text = readFileSync(join(__dirname, '..', 'fixtures', 'admission', `${name}.json`), 'utf8');
  return JSON.parse(text.split(FIXTURE_HOST).join(host));
}
