/**
 * A private certificate authority for TLS tests, made with the openssl CLI (node:crypto reads
 * certificates but cannot issue them): P-256 keys, a CA certificate, and leaf certificates it
 * signs, for a server (SANs `127.0.0.1` and `localhost` by default) or a client (mutual TLS).
 *
 *   const ca = await createCa(dir, 'webhook-ca');
 *   const serving = await ca.issue('serving');                    // serverAuth, 127.0.0.1 + localhost
 *   const client = await ca.issue('apiserver', { client: true }); // clientAuth
 *   serving.certFile, serving.keyFile, ca.certFile                // PEM files in `dir`
 *   serving.fingerprint                                           // what a peer certificate shows
 */
import { execFile } from 'node:child_process';
import { X509Certificate, randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its private key, as PEM files and text. */
export interface IssuedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** SHA-256 fingerprint as node:tls shows it (`AA:BB:...`), to tell which certificate a peer sent. */
  readonly fingerprint: string;
}

/** What `issue` makes. */
export interface IssueOptions {
  /** A client certificate (clientAuth) rather than a serving one (serverAuth). */
  readonly client?: boolean;
  /** Subject alternative names; default `IP:127.0.0.1, DNS:localhost` for a serving certificate. */
  readonly subjectAltNames?: readonly string[];
  /** Days of validity; default 2. */
  readonly days?: number;
}

/** A CA that issues leaf certificates. */
export interface TestCa extends IssuedCertificate {
  /** Issues a leaf certificate into `<dir>/<name>.crt` and `<dir>/<name>.key`. */
  issue(name: string, options?: IssueOptions): Promise<IssuedCertificate>;
}

const DEFAULT_SANS = ['IP:127.0.0.1', 'DNS:localhost'];

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(
      `openssl ${args[0] ?? ''} failed (apt-get install -y openssl?): ${stderr || String(err)}`,
      {
        cause: err,
      },
    );
  }
}

async function newKey(keyFile: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
}

async function loaded(certFile: string, keyFile: string): Promise<IssuedCertificate> {
  const cert = await readFile(certFile, 'utf8');
  const key = await readFile(keyFile, 'utf8');
  return { certFile, keyFile, cert, key, fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Creates a CA (`<dir>/<name>.crt`, `<dir>/<name>.key`) with a fresh key. */
export async function createCa(dir: string, name: string): Promise<TestCa> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  await newKey(keyFile);
  await openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const ca = await loaded(certFile, keyFile);
  return {
    ...ca,
    async issue(leaf, options = {}) {
      const leafCert = join(dir, `${leaf}.crt`);
      const leafKey = join(dir, `${leaf}.key`);
      const csr = join(dir, `${leaf}.csr`);
      const extensions = join(dir, `${leaf}.ext`);
      const sans = options.subjectAltNames ?? (options.client === true ? [] : DEFAULT_SANS);
      await newKey(leafKey);
      await openssl(['req', '-new', '-key', leafKey, '-out', csr, '-subj', `/CN=${leaf}`]);
      await writeFile(
        extensions,
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature',
          `extendedKeyUsage=${options.client === true ? 'clientAuth' : 'serverAuth'}`,
          ...(sans.length > 0 ? [`subjectAltName=${sans.join(',')}`] : []),
        ].join('\n'),
      );
      await openssl([
        'x509',
        '-req',
        '-in',
        csr,
        '-CA',
        certFile,
        '-CAkey',
        keyFile,
        // A random serial: no serial file to share between concurrent issues.
        '-set_serial',
        `0x${randomBytes(16).toString('hex')}`,
        '-out',
        leafCert,
        '-days',
        String(options.days ?? 2),
        '-sha256',
        '-extfile',
        extensions,
      ]);
      await Promise.all([rm(csr, { force: true }), rm(extensions, { force: true })]);
      return loaded(leafCert, leafKey);
    },
  };
}
