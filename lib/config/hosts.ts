/** Facts about registry hosts (`host[:port]`) that the configuration needs. */
import { isRegistryHost } from '../core/reference';

/** The host without its port: `127.0.0.1:5000` → `127.0.0.1`, `[::1]:5000` → `[::1]`. */
export function hostName(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end < 0 ? host : host.slice(0, end + 1);
  }
  // A bare IPv6 address (`::1`, as in a listen address) has no port.
  if (host.indexOf(':') !== host.lastIndexOf(':')) return host;
  const colon = host.indexOf(':');
  return colon < 0 ? host : host.slice(0, colon);
}

/** True for hosts that can only be reached from this machine: localhost, 127.0.0.0/8, [::1]. */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host).toLowerCase();
  return name === 'localhost' || name === '[::1]' || name === '::1' || /^127(?:\.\d{1,3}){3}$/.test(name);
}

const ECR_HOSTS = [
  /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/,
  /^(\d{12})\.dkr-ecr(?:-fips)?\.([a-z0-9-]+)\.on\.aws$/,
];

/** The region of an Amazon ECR private registry host, or undefined when the host is not one. */
export function ecrRegionOf(host: string): string | undefined {
  for (const pattern of ECR_HOSTS) {
    const match = pattern.exec(host.toLowerCase());
    if (match !== null) return match[2];
  }
  return undefined;
}

/** True for Amazon ECR private registry hosts (`<account>.dkr.ecr.<region>.amazonaws.com`). */
export const isEcrHost = (host: string): boolean => ecrRegionOf(host) !== undefined;

/** AWS region names: `us-east-1`, `us-gov-west-1`, `cn-north-1`, `eu-isoe-west-1`. */
export const isAwsRegion = (region: string): boolean => /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/.test(region);

/** A problem with a `host[:port]` string, or undefined when it is fine. */
export function checkRegistryHost(host: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(host)) {
    return `must be host[:port] without a scheme, e.g. "${host.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')}"`;
  }
  if (host.includes('/')) return 'must be host[:port] without a path';
  if (!isRegistryHost(host)) return `"${host}" is not a valid host[:port]`;
  const port = /:(\d+)$/.exec(host);
  if (port !== null && (Number(port[1]) < 1 || Number(port[1]) > 65535)) {
    return `port ${port[1]} is out of range (1-65535)`;
  }
  return undefined;
}
