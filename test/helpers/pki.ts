import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** PEM files of a throw-away PKI made by `makeTestPki`. */
export interface TestPki {
  /** CA certificate that signed the server and client certificates. */
  caCert: string;
  /** Server certificate (SAN IP:127.0.0.1, DNS:localhost) and its PKCS#8 key. */
  serverCert: string;
  serverKey: string;
  /** Key and certificate chain in one file, as Kafka's PEM keystore wants it. */
  serverKeystore: string;
  /** Client certificate for mutual TLS, signed by the same CA, and its key. */
  clientCert: string;
  clientKey: string;
  /** A second CA, unrelated: trusting only it makes the server certificate untrusted. */
  otherCaCert: string;
  /** A client certificate signed by the unrelated CA: a server trusting only caCert refuses it. */
  otherClientCert: string;
  otherClientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Makes a CA, a server and a client certificate with openssl in `dir` (EC P-256, valid 2 days). */
export function makeTestPki(dir: string): TestPki {
  mkdirSync(dir, { recursive: true });
  const p = (f: string): string => join(dir, f);
  const key = (name: string): void => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', p(`${name}.key`)], dir);
  const ca = (name: string): void => {
    key(name);
    openssl(['req', '-x509', '-new', '-key', p(`${name}.key`), '-days', '2', '-subj', `/CN=sluice test ${name}`, '-out', p(`${name}.crt`)], dir);
  };
  const leaf = (name: string, caName: string, ext: string): void => {
    key(name);
    openssl(['req', '-new', '-key', p(`${name}.key`), '-subj', `/CN=${name}`, '-out', p(`${name}.csr`)], dir);
    writeFileSync(p(`${name}.ext`), ext);
    openssl(['x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${caName}.crt`), '-CAkey', p(`${caName}.key`), '-CAcreateserial', '-days', '2', '-extfile', p(`${name}.ext`), '-out', p(`${name}.crt`)], dir);
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  writeFileSync(p('server-keystore.pem'), readFileSync(p('server.key'), 'utf8') + readFileSync(p('server.crt'), 'utf8'));
  return {
    caCert: p('ca.crt'),
    serverCert: p('server.crt'),
    serverKey: p('server.key'),
    serverKeystore: p('server-keystore.pem'),
    clientCert: p('client.crt'),
    clientKey: p('client.key'),
    otherCaCert: p('other-ca.crt'),
    otherClientCert: p('other-client.crt'),
    otherClientKey: p('other-client.key'),
  };
}
