// certs.mjs: kubesim's CA and server certificate, made with the openssl CLI at start (reused when already in dir).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/*
 * Makes (or reuses) dir/ca.crt + ca.key and a server certificate dir/server.crt + server.key signed by it, with
 * subjectAltName IP:127.0.0.1, DNS:localhost, DNS:kubernetes.default.svc (plus extraSans). Returns the PEMs.
 */
export function makeCerts(dir, { extraSans = [] } = {}) {
    fs.mkdirSync(dir, { recursive: true });
    const p = f => path.join(dir, f);
    const run = args => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (!fs.existsSync(p('ca.crt')) || !fs.existsSync(p('ca.key'))) {
        run(['req', '-x509', ...EC, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '7', '-subj', '/CN=kubesim-ca',
            '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    }
    if (!fs.existsSync(p('server.crt')) || !fs.existsSync(p('server.key'))) {
        const sans = ['IP:127.0.0.1', 'DNS:localhost', 'DNS:kubernetes', 'DNS:kubernetes.default.svc', ...extraSans].join(',');
        fs.writeFileSync(p('server.ext'), `subjectAltName=${sans}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`);
        run(['req', ...EC, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=kube-apiserver']);
        run(['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
            '-out', p('server.crt'), '-days', '7', '-extfile', p('server.ext')]);
    }
    return {
        caPath: p('ca.crt'),
        caPem: fs.readFileSync(p('ca.crt'), 'utf8'),
        cert: fs.readFileSync(p('server.crt'), 'utf8'),
        key: fs.readFileSync(p('server.key'), 'utf8'),
    };
}
