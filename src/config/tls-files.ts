import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

/** How the loader looks at files a config names; injectable so tests need not write real ones. */
export interface ConfigFiles {
  /** Throws (with an errno `code`) if the path cannot be looked at. */
  isRegularFile: (path: string) => boolean;
  readFile: (path: string) => Buffer;
}

/** Reads a file the config names (a password file): only a regular file, since a FIFO or a device such as /dev/zero would block or never end. */
export function readRegularFile(path: string): string {
  if (!statSync(path).isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: 'not a regular file' });
  return readFileSync(path, 'utf8');
}

export const realConfigFiles: ConfigFiles = {
  isRegularFile: (path) => statSync(path).isFile(),
  readFile: (path) => readFileSync(path),
};

interface TlsFiles {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/**
 * Checks, at load time, that the TLS files of one section exist, are regular readable files and
 * hold what their key says (PEM certificates, an unencrypted PEM private key matching the
 * certificate): a client would otherwise fail only when it first connects.
 */
export function checkTlsFiles(tls: TlsFiles, at: string, files: ConfigFiles, errors: string[]): void {
  const read = (key: keyof TlsFiles): string | null => {
    const path = tls[key];
    if (path === undefined) return null;
    try {
      if (!files.isRegularFile(path)) {
        errors.push(`${at}.${key}: ${path} is not a regular file`);
        return null;
      }
      return files.readFile(path).toString('latin1');
    } catch (err) {
      errors.push(`${at}.${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      return null;
    }
  };
  const certs = (key: 'ca_file' | 'cert_file'): X509Certificate[] | null => {
    const text = read(key);
    if (text === null) return null;
    const blocks = text.match(CERT_BLOCK) ?? [];
    try {
      if (blocks.length === 0) throw new Error('no PEM block');
      return blocks.map((b) => new X509Certificate(b));
    } catch {
      errors.push(`${at}.${key}: ${tls[key]} holds no PEM certificate ("-----BEGIN CERTIFICATE-----")`);
      return null;
    }
  };
  certs('ca_file');
  const cert = certs('cert_file')?.[0];
  const keyText = read('key_file');
  let key: KeyObject | undefined;
  if (keyText !== null) {
    try {
      if (!keyText.includes('-----BEGIN')) throw new Error('not PEM');
      key = createPrivateKey(keyText);
    } catch {
      errors.push(`${at}.key_file: ${tls.key_file} holds no unencrypted PEM private key (sluice takes no passphrase)`);
    }
  }
  if (cert && key && !cert.checkPrivateKey(key)) errors.push(`${at}.key_file: ${tls.key_file} is not the key of cert_file ${tls.cert_file}`);
}
