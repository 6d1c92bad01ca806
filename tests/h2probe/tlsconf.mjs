// tlsconf.mjs: test certificates made at test time with openssl, and Gateway YAML with HTTPS listeners
// whose certificateRefs point at Secrets (base64 data, or file annotations for use outside a cluster).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../integration/lib/harness.mjs';

/* A self-signed EC certificate for host (also a SAN); returns {crt, key, crtFile, keyFile} (PEM strings/paths). */
export function makeCert(host) {
    const dir = fs.mkdtempSync(path.join(tmpDir(), `cert-${host}-`));
    const crtFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-days', '2', '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`, '-keyout', keyFile,
        '-out', crtFile], { stdio: 'ignore' });
    return { crt: fs.readFileSync(crtFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), crtFile, keyFile };
}

export function secretYaml(name, cert) {
    const b64 = s => Buffer.from(s).toString('base64');
    return `apiVersion: v1
kind: Secret
metadata: {name: ${name}}
type: kubernetes.io/tls
data:
  tls.crt: ${b64(cert.crt)}
  tls.key: ${b64(cert.key)}
`;
}

export function secretFileYaml(name, crtFile, keyFile) {
    return `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
  annotations:
    ssegate.io/tls-crt-file: ${crtFile}
    ssegate.io/tls-key-file: ${keyFile}
type: kubernetes.io/tls
`;
}

/*
 * listeners: [{name, port, protocol: 'HTTP'|'HTTPS', hostname, certs: [secret names], alpn}]; routes: [{name,
 * path, port}] each attached to every listener; extra: more YAML documents.
 */
export function tlsGatewayYaml({ listeners, routes, extra = [] }) {
    const ls = listeners.map(l => {
        let s = `  - name: ${l.name}\n    protocol: ${l.protocol || 'HTTPS'}\n    port: ${l.port}\n`;
        if (l.hostname) s += `    hostname: ${l.hostname}\n`;
        if (l.certs) {
            s += `    tls:\n      mode: Terminate\n      certificateRefs: [${l.certs.map(c => `{kind: Secret, name: ${c}}`).join(', ')}]\n`;
            if (l.alpn) s += `      options: {ssegate.io/alpn: "${l.alpn}"}\n`;
        }
        return s;
    }).join('');
    const docs = [`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
${ls}`];
    for (const r of routes) {
        docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${r.name}}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: ${r.path}}}]
    backendRefs: [{name: 127.0.0.1, port: ${r.port}}]
`);
    }
    return [...docs, ...extra].join('---\n');
}
