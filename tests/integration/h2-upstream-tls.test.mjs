// h2-upstream-tls.test.mjs: HTTP/2 over TLS to backends. A Service port with appProtocol https and a BackendTLSPolicy
// is reached over TLS offering ALPN h2 then http/1.1: a Node http2.createSecureServer backend (certificate from a test
// CA made here) gets HTTP/2, streams share a session, the policy's verification still applies, and a backend that
// chooses http/1.1 is spoken to in HTTP/1.1.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { before, test } from 'node:test';
import { h2Backend, h2Service } from './lib/h2backends.mjs';
import { freePort, gatewayYaml, setup, startGateway, tmpDir, track, withLogs } from './lib/harness.mjs';
import { openSse, waitEvents } from './lib/sseclient.mjs';

setup();

function openssl(args) {
    execFileSync('openssl', args, { stdio: 'ignore' });
}

function makeCA(name) {
    const dir = fs.mkdtempSync(path.join(tmpDir(), `ca-${name}-`));
    const crtFile = path.join(dir, 'ca.crt');
    const keyFile = path.join(dir, 'ca.key');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign',
        '-keyout', keyFile, '-out', crtFile]);
    return { crt: fs.readFileSync(crtFile, 'utf8'), crtFile, keyFile };
}

function makeLeaf(ca, cn) {
    const dir = fs.mkdtempSync(path.join(tmpDir(), 'leaf-'));
    const keyFile = path.join(dir, 'l.key');
    const csr = path.join(dir, 'l.csr');
    const crtFile = path.join(dir, 'l.crt');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`,
        '-keyout', keyFile, '-out', csr]);
    const ext = path.join(dir, 'ext.cnf');
    fs.writeFileSync(ext, `subjectAltName=DNS:${cn}\nextendedKeyUsage=serverAuth\n`);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.crtFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-days', '2',
        '-extfile', ext, '-out', crtFile]);
    return { cert: fs.readFileSync(crtFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

const indent = (s, n) => s.trimEnd().split('\n').map(l => ' '.repeat(n) + l).join('\n');
const configMap = (name, pem) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata:\n  ca.crt: |\n${indent(pem, 4)}\n`;
const policy = (name, svc, hostname) => `apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {name: ${name}}
spec:
  targetRefs: [{group: "", kind: Service, name: ${svc}}]
  validation:
    hostname: ${hostname}
    caCertificateRefs: [{group: "", kind: ConfigMap, name: ca}]
`;

function get(port, p) {
    return new Promise((resolve, reject) => {
        const r = http.get({ host: '127.0.0.1', port, path: p, agent: false }, res => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', d => (b += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: b }));
        });
        r.on('error', reject);
        r.setTimeout(10000, () => r.destroy(new Error('timeout')));
    });
}

let h2be, h1only, wrongName, port, admin, gw;

before(async () => {
    const ca = makeCA('h2-backend-ca');
    const leaf = makeLeaf(ca, 'h2.backend.test');
    h2be = await h2Backend({ tls: leaf });
    /* An HTTPS/1.1 server: it answers no ALPN, as most HTTP/1.1 servers do. */
    h1only = { conns: 0, requests: 0 };
    const srv = https.createServer(leaf, (req, res) => {
        h1only.requests++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ path: req.url, http1: req.httpVersion === '1.1' }));
    });
    srv.on('secureConnection', () => h1only.conns++);
    await new Promise(r => srv.listen(0, '127.0.0.1', r));
    h1only.port = srv.address().port;
    track(() => new Promise(r => srv.close(r)));
    wrongName = await h2Backend({ tls: makeLeaf(ca, 'other.test') });
    [port, admin] = await Promise.all([freePort(), freePort()]);
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'h1', path: '/h1only', backends: [{ name: 'h1only', port: 8080 }] },
                { name: 'bad', path: '/wrongname', backends: [{ name: 'wrongname', port: 8080 }] },
                { name: 'h2', path: '/', backends: [{ name: 'h2tls', port: 8080 }] },
            ],
            extra: [
                configMap('ca', ca.crt),
                h2Service('h2tls', h2be.port, 'https'), policy('h2tls', 'h2tls', 'h2.backend.test'),
                h2Service('h1only', h1only.port, 'https'), policy('h1only', 'h1only', 'h2.backend.test'),
                h2Service('wrongname', wrongName.port, 'https'), policy('wrongname', 'wrongname', 'h2.backend.test'),
            ].join('---\n'),
        }),
        args: ['--workers', '1', '--admin', `127.0.0.1:${admin}`],
        waitPorts: [port],
    });
});

test('h2 over TLS (ALPN): plain and SSE responses, many streams on one session', withLogs(() => [gw], async () => {
    const r = await get(port, '/x/plain');
    assert.equal(r.status, 200, r.body);
    const j = JSON.parse(r.body);
    assert.equal(j.headers[':scheme'], 'https');
    assert.equal(j.path, '/x/plain');
    const hs = [];
    for (let i = 0; i < 20; i++) hs.push(openSse(port, `/sse/tls${i}?n=3&end=1`));
    for (const h of hs) {
        await waitEvents(h, 3, 10000);
        assert.equal((await h.done).complete, true);
    }
    assert.equal(h2be.state.sessions, 1, 'one TLS session carried every stream');
    assert.equal(h2be.state.streams, 21);
}));

test('a backend that chooses http/1.1 in ALPN is spoken to in HTTP/1.1', withLogs(() => [gw], async () => {
    const r = await get(port, '/h1only/a');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).http1, true);
    const r2 = await get(port, '/h1only/b');
    assert.equal(JSON.parse(r2.body).http1, true);
    assert.equal(h1only.requests, 2);
    const m = (await get(admin, '/metrics')).body;
    assert.match(m, /ssegate_upstream_h2_alpn_fallbacks_total [1-9]/);
}));

test("the policy's verification applies to h2 too: a wrong name is 502, nothing sent", withLogs(() => [gw], async () => {
    const r = await get(port, '/wrongname/x');
    assert.equal(r.status, 502);
    assert.equal(wrongName.state.streams, 0);
    assert.match(gw.stderr, /TLS to the backend failed \(hostname mismatch/);
}));
