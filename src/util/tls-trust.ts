import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';

/** Where Debian, Ubuntu and Raspberry Pi OS keep the system's CA bundle (update-ca-certificates). */
export const DEFAULT_SYSTEM_CA_FILE = '/etc/ssl/certs/ca-certificates.crt';

/**
 * The CAs to trust when a config names no `ca_file`: the system's bundle plus Node's own.
 *
 * Node trusts only its bundled Mozilla list by default, so a company CA installed on the gateway
 * with update-ca-certificates would not be trusted. Node 20 has no API for the system store
 * (tls.getCACertificates('system') is Node 22.15+), and `--use-openssl-ca` would drop Node's
 * list and depend on how node was started; reading the bundle file here works under any launcher.
 * `SSL_CERT_FILE` names another bundle, as it does for OpenSSL, curl and Python.
 * Read when a client is created, so a CA added later is picked up on the next reconnect.
 */
export function systemCas(env: NodeJS.ProcessEnv = process.env): string[] {
  const file = env.SSL_CERT_FILE || DEFAULT_SYSTEM_CA_FILE;
  let system = '';
  try {
    system = readFileSync(file, 'utf8');
  } catch {
    // No bundle on this system: Node's list alone, as Node itself would do.
  }
  return system ? [...rootCertificates, system] : [...rootCertificates];
}
