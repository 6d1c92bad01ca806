// backend-tls.test.mjs: TLS to backends (BackendTLSPolicy, Gateway spec.tls.backend) with real Node HTTPS
// backends that have their own CA; certificates are made at test time with openssl.
//
// Gateway API's conformance test BackendTLSPolicy, in our own words: a route's backend is a Service that a
// BackendTLSPolicy targets; the gateway connects to it over TLS, sends the policy's hostname as SNI, and checks the
// backend's certificate against the CA the policy names (a ConfigMap ca.crt) and that hostname; a request through
// the route then succeeds. A backend whose certificate does not verify (wrong name, another CA, expired) is never
// used: the client gets 502, and nothing is ever sent to it in plaintext. Here also: subjectAltNames, the system
// trust store, backend mTLS (Gateway spec.tls.backend), AGC's BackendTLSPolicy form, session resumption, the keep-
// alive pool over TLS, the failure metric and log line, and the configs that must be refused.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeCert, secretYaml } from '../h2probe/tlsconf.mjs';
import { freePort, runGateway, setup, startGateway, tmpDir, waitFor, withLogs, writeTemp } from './lib/harness.mjs';

setup();

const GW = 'gateway.networking.k8s.io';
const ALB = 'alb.networking.azure.io/v1';
const SPIFFE = 'spiffe://cluster.test/ns/default/sa/backend';

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

/* A leaf signed by ca: {crt, key}. days < 0 makes it expired. */
function makeLeaf(ca, cn, { days = 2, san, usage = 'serverAuth' } = {}) {
    const dir = fs.mkdtempSync(path.join(tmpDir(), 'leaf-'));
    const keyFile = path.join(dir, 'l.key');
    const csr = path.join(dir, 'l.csr');
    const crtFile = path.join(dir, 'l.crt');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`,
        '-keyout', keyFile, '-out', csr]);
    const ext = path.join(dir, 'ext.cnf');
    fs.writeFileSync(ext, `subjectAltName=${san || `DNS:${cn}`}\nextendedKeyUsage=${usage}\n`);
    openssl(['x509', '-req', '-in', csr, '-CA', ca.crtFile, '-CAkey', ca.keyFile, '-CAcreateserial',
        '-days', String(days), '-extfile', ext, '-out', crtFile]);
    return { crt: fs.readFileSync(crtFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8') };
}

/*
 * A Node HTTPS backend. Records each TLS connection ({sni, reused, client}) and each request ({url, headers}).
 * a path with /sse streams three events; with /close, it answers with Connection: close; anything else answers its path.
 */
async function tlsBackend({ crt, key, ca, requestCert = false, rejectUnauthorized = false }) {
    const conns = [];
    const requests = [];
    const server = https.createServer({ cert: crt, key, ca, requestCert, rejectUnauthorized }, (req, res) => {
        const s = req.socket;
        requests.push({ url: req.url, sni: s.servername, client: s.getPeerCertificate()?.subject?.CN || null });
        if (req.url.includes('/sse')) {
            res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
            for (let i = 1; i <= 3; i++) res.write(`id: ${i}\ndata: event ${i} over tls\n\n`);
            res.end();
            return;
        }
        const body = JSON.stringify({ url: req.url, sni: s.servername, client: requests.at(-1).client });
        const h = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
        if (req.url.includes('/close')) h.connection = 'close';
        res.writeHead(200, h);
        res.end(body);
    });
    server.on('secureConnection', s => conns.push({ sni: s.servername, reused: s.isSessionReused() }));
    const tlsErrors = [];
    server.on('tlsClientError', e => tlsErrors.push(e.code || e.message));
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    return { port: server.address().port, conns, requests, tlsErrors, close: () => server.close() };
}

/* A plain HTTP backend, to show that nothing is ever sent in plaintext to a policy's Service. */
async function plainBackend() {
    const requests = [];
    const server = http.createServer((req, res) => {
        requests.push(req.url);
        res.end('plaintext');
    });
    await new Promise(r => server.listen(0, '127.0.0.1', r));
    return { port: server.address().port, requests, close: () => server.close() };
}

function get(port, p, headers = {}) {
    return new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: p, headers, agent: false }, res => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', d => (body += d));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
        });
        req.on('error', reject);
        req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    });
}

const indent = (s, n) => s.trimEnd().split('\n').map(l => ' '.repeat(n) + l).join('\n');
const configMap = (name, pem) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata:\n  ca.crt: |\n${indent(pem, 4)}\n`;
const service = (name, port, portName = 'https') => `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  ports: [{name: ${portName}, port: 443}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  labels: {kubernetes.io/service-name: ${name}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: ${portName}, port: ${port}}]
`;
/* Gateway API BackendTLSPolicy; validation: YAML (indented 2). */
const policy = (name, svc, validation, { section, api = 'v1' } = {}) => `apiVersion: ${GW}/${api}
kind: BackendTLSPolicy
metadata: {name: ${name}}
spec:
  targetRefs: [{group: "", kind: Service, name: ${svc}${section ? `, sectionName: ${section}` : ''}}]
  validation:
${indent(validation, 4)}
`;

/* One Gateway (HTTP listener on port) with one rule per route {path, svc}; tlsBackend: spec.tls.backend YAML. */
function gwYaml({ port, routes, extra = [], tlsBackend: tb = '' }) {
    const rules = routes.map(r => `  - matches: [{path: {type: PathPrefix, value: ${r.path}}}]
    backendRefs: [{name: ${r.svc}, port: 443}]
`).join('');
    return [`apiVersion: ${GW}/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
${tb}  listeners:
  - {name: http, protocol: HTTP, port: ${port}}
---
apiVersion: ${GW}/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
${rules}`, ...extra].join('---\n');
}

async function metrics(admin) {
    return (await get(admin, '/metrics')).body;
}
function metric(text, name) {
    const m = text.split('\n').find(l => l.startsWith(name + ' '));
    return m ? Number(m.slice(name.length + 1)) : NaN;
}

let caA, caB, caClient, good, expired, selfSigned, mtlsBe, agcBe, poolBe, resumeBe, plain, clientCert;
let gw, port, admin;

before(async () => {
    caA = makeCA('backend-ca-a');
    caB = makeCA('backend-ca-b');
    caClient = makeCA('gateway-client-ca');
    const goodCert = makeLeaf(caA, 'backend.test', { san: `DNS:backend.test,URI:${SPIFFE}` });
    good = await tlsBackend({ ...goodCert, ca: caClient.crt, requestCert: true, rejectUnauthorized: false });
    expired = await tlsBackend(makeLeaf(caA, 'backend.test', { days: -1 }));
    const ss = makeCert('backend.test');
    selfSigned = await tlsBackend(ss);
    mtlsBe = await tlsBackend({ ...makeLeaf(caA, 'mtls.backend.test'), ca: caClient.crt, requestCert: true,
        rejectUnauthorized: true });
    agcBe = await tlsBackend(makeLeaf(caB, 'agc.backend.test'));
    poolBe = await tlsBackend(goodCert);
    resumeBe = await tlsBackend(goodCert);
    plain = await plainBackend();
    clientCert = makeLeaf(caClient, 'ssegate-gateway', { usage: 'clientAuth' });
    [port, admin] = await Promise.all([freePort(), freePort()]);
    const caRefA = 'caCertificateRefs: [{group: "", kind: ConfigMap, name: ca-a}]';
    const caRefB = 'caCertificateRefs: [{group: "", kind: ConfigMap, name: ca-b}]';
    gw = await startGateway({
        yaml: gwYaml({
            port,
            tlsBackend: '  tls:\n    backend:\n      clientCertificateRef: {kind: Secret, name: gw-client}\n',
            routes: [
                { path: '/good', svc: 'good' }, { path: '/wronghost', svc: 'wronghost' },
                { path: '/unknownca', svc: 'unknownca' }, { path: '/expired', svc: 'expired' },
                { path: '/san-uri', svc: 'san-uri' }, { path: '/san-bad', svc: 'san-bad' },
                { path: '/system', svc: 'system' }, { path: '/mtls', svc: 'mtls' }, { path: '/agc', svc: 'agc' },
                { path: '/pool', svc: 'pool' }, { path: '/resume', svc: 'resume' }, { path: '/plain', svc: 'plain' },
                { path: '/alpha', svc: 'alpha' },
            ],
            extra: [
                configMap('ca-a', caA.crt), configMap('ca-b', caB.crt), secretYaml('gw-client', clientCert),
                `apiVersion: v1\nkind: Secret\nmetadata: {name: agc-ca}\ntype: Opaque\nstringData:\n  ca.crt: |\n${indent(caB.crt, 4)}\n`,
                service('good', good.port), policy('good', 'good', `hostname: backend.test\n${caRefA}`, { section: 'https' }),
                service('wronghost', good.port), policy('wronghost', 'wronghost', `hostname: other.test\n${caRefA}`),
                service('unknownca', good.port), policy('unknownca', 'unknownca', `hostname: backend.test\n${caRefB}`),
                service('expired', expired.port), policy('expired', 'expired', `hostname: backend.test\n${caRefA}`),
                service('san-uri', good.port), policy('san-uri', 'san-uri',
                    `hostname: not-in-the-cert.test\n${caRefA}\nsubjectAltNames: [{type: URI, uri: "${SPIFFE}"}]`),
                service('san-bad', good.port), policy('san-bad', 'san-bad',
                    `hostname: backend.test\n${caRefA}\nsubjectAltNames: [{type: Hostname, hostname: nope.test}, {type: URI, uri: "spiffe://other/x"}]`),
                service('system', selfSigned.port), policy('system', 'system', 'hostname: backend.test\nwellKnownCACertificates: System'),
                service('mtls', mtlsBe.port), policy('mtls', 'mtls', `hostname: mtls.backend.test\n${caRefA}`),
                service('agc', agcBe.port),
                `apiVersion: ${ALB}\nkind: BackendTLSPolicy\nmetadata: {name: agc}\nspec:\n  targetRef: {group: "", kind: Service, name: agc}\n` +
                `  default:\n    sni: agc.backend.test\n    ports: [{port: 443}]\n    verify:\n      caCertificateRef: {group: "", kind: Secret, name: agc-ca}\n      subjectAltName: agc.backend.test\n`,
                service('pool', poolBe.port), policy('pool', 'pool', `hostname: backend.test\n${caRefA}`),
                service('resume', resumeBe.port), policy('resume', 'resume', `hostname: backend.test\n${caRefA}`),
                service('plain', plain.port), policy('plain', 'plain', `hostname: backend.test\n${caRefA}`),
                service('alpha', good.port), policy('alpha', 'alpha', `hostname: backend.test\n${caRefA}`, { api: 'v1alpha3' }),
            ],
        }),
        args: ['--workers', '1', '--admin', `127.0.0.1:${admin}`],
        waitPorts: [port, admin],
    });
});

after(() => {
    for (const b of [good, expired, selfSigned, mtlsBe, agcBe, poolBe, resumeBe, plain]) b?.close();
});

test('verified TLS to the backend: 200, the policy hostname is sent as SNI, and the backend sees our client certificate',
    withLogs(() => [gw], async () => {
        const r = await get(port, '/good/one');
        assert.equal(r.status, 200, r.body);
        const j = JSON.parse(r.body);
        assert.equal(j.url, '/good/one');
        assert.equal(j.sni, 'backend.test');
        assert.equal(j.client, 'ssegate-gateway', 'Gateway spec.tls.backend: the gateway showed its certificate');
        const a = await get(port, '/alpha/x');
        assert.equal(a.status, 200, 'v1alpha3 is served too');
    }));

test('an SSE stream through a TLS backend arrives whole', withLogs(() => [gw], async () => {
    const r = await get(port, '/good/sse', { accept: 'text/event-stream' });
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /text\/event-stream/);
    for (let i = 1; i <= 3; i++) assert.ok(r.body.includes(`id: ${i}\ndata: event ${i} over tls\n\n`), r.body);
}));

test('a certificate that does not verify: 502, the reason in the log and in the metric, never plaintext',
    withLogs(() => [gw], async () => {
        const cases = [
            ['/wronghost', 'hostname_mismatch', /TLS to the backend failed \(hostname mismatch; BackendTLSPolicy default\/wronghost\)/],
            ['/unknownca', 'unknown_ca', /TLS to the backend failed \(unable to get local issuer certificate; BackendTLSPolicy default\/unknownca\)/],
            ['/expired', 'expired', /TLS to the backend failed \(certificate has expired; BackendTLSPolicy default\/expired\)/],
            ['/san-bad', 'san_mismatch', /TLS to the backend failed \(no subjectAltName of the policy matches the certificate/],
            ['/system', 'unknown_ca', /TLS to the backend failed \(self.signed certificate; BackendTLSPolicy default\/system\)/],
            ['/plain', 'handshake', /TLS to the backend failed \([^)]*; BackendTLSPolicy default\/plain\)/],
        ];
        const before = await metrics(admin);
        const seenGood = good.requests.length;
        for (const [p, reason, log] of cases) {
            const r = await get(port, `${p}/x`);
            assert.equal(r.status, 502, `${p}: ${r.body}`);
            assert.match(r.body, /TLS to the upstream failed/);
            await waitFor(() => log.test(gw.stderr), 5000, `log line for ${p}`);
            void reason;
        }
        const after_ = await metrics(admin);
        const count = (t, reason) => metric(t, `ssegate_upstream_tls_errors_total{reason="${reason}"}`);
        for (const reason of ['hostname_mismatch', 'expired', 'san_mismatch', 'handshake'])
            assert.equal(count(after_, reason) - count(before, reason), 1, reason);
        assert.equal(count(after_, 'unknown_ca') - count(before, 'unknown_ca'), 2);
        assert.equal(good.requests.length, seenGood, 'no request reached a backend whose certificate failed');
        assert.deepEqual(plain.requests, [], 'nothing was sent in plaintext to a Service under a policy');
    }));

test('subjectAltNames: a URI SAN replaces the hostname check', withLogs(() => [gw], async () => {
    const r = await get(port, '/san-uri/x');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).sni, 'not-in-the-cert.test', 'the hostname is still the SNI');
}));

test('backend mTLS: a backend that requires a client certificate accepts the Gateway\'s', withLogs(() => [gw], async () => {
    const r = await get(port, '/mtls/x');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).client, 'ssegate-gateway');
}));

test('AGC\'s BackendTLSPolicy form (sni, ports, verify.caCertificateRef to a Secret, subjectAltName)',
    withLogs(() => [gw], async () => {
        const r = await get(port, '/agc/x');
        assert.equal(r.status, 200, r.body);
        assert.equal(JSON.parse(r.body).sni, 'agc.backend.test');
    }));

test('the keep-alive pool reuses TLS connections: 6 requests, one handshake', withLogs(() => [gw], async () => {
    for (let i = 0; i < 6; i++) {
        const r = await get(port, `/pool/${i}`);
        assert.equal(r.status, 200, r.body);
    }
    assert.equal(poolBe.requests.length, 6);
    assert.equal(poolBe.conns.length, 1, `TLS connections at the backend: ${JSON.stringify(poolBe.conns)}`);
}));

test('a new connection to the backend resumes the TLS session of the previous one', withLogs(() => [gw], async () => {
    const before = await metrics(admin);
    /* /close makes the backend close each connection, so every request needs a new one. */
    for (let i = 0; i < 4; i++) {
        const r = await get(port, `/resume/close-${i}`);
        assert.equal(r.status, 200, r.body);
    }
    assert.equal(resumeBe.conns.length, 4, JSON.stringify(resumeBe.conns));
    assert.equal(resumeBe.conns[0].reused, false);
    assert.deepEqual(resumeBe.conns.slice(1).map(c => c.reused), [true, true, true]);
    const after_ = await metrics(admin);
    const resumed = t => metric(t, 'ssegate_upstream_tls_handshakes_total{resumed="true"}');
    assert.equal(resumed(after_) - resumed(before), 3);
}));

test('HealthCheckPolicy useTLS: probes go over TLS and verify like the data path', async () => {
    const hcGood = await tlsBackend(makeLeaf(caA, 'backend.test'));
    const hcExpired = await tlsBackend(makeLeaf(caA, 'backend.test', { days: -1 }));
    const p2 = await freePort();
    const caRefA = 'caCertificateRefs: [{group: "", kind: ConfigMap, name: ca-a}]';
    const hc = svc => `apiVersion: ${ALB}\nkind: HealthCheckPolicy\nmetadata: {name: hc-${svc}}\nspec:\n` +
        `  targetRef: {group: "", kind: Service, name: ${svc}}\n  default:\n    interval: 100ms\n    timeout: 1s\n` +
        '    unhealthyThreshold: 1\n    useTLS: true\n    http: {host: health.test, path: /healthz}\n';
    const g = await startGateway({
        yaml: gwYaml({
            port: p2,
            routes: [{ path: '/hc-good', svc: 'hc-good' }, { path: '/hc-expired', svc: 'hc-expired' }],
            extra: [
                configMap('ca-a', caA.crt),
                service('hc-good', hcGood.port), policy('hc-good', 'hc-good', `hostname: backend.test\n${caRefA}`), hc('hc-good'),
                service('hc-expired', hcExpired.port), policy('hc-expired', 'hc-expired', `hostname: backend.test\n${caRefA}`),
                hc('hc-expired'),
            ],
        }),
        waitPorts: [p2],
    });
    try {
        await withLogs([g], async () => {
            await waitFor(() => hcGood.requests.filter(r => r.url === '/healthz').length >= 2, 5000, 'two TLS probes');
            assert.ok(hcGood.requests.every(r => r.sni === 'backend.test'), 'probes send the policy hostname as SNI');
            await waitFor(() => /health: 127\.0\.0\.1:\d+ unhealthy: tls: certificate has expired/.test(g.stderr), 5000,
                'the expired backend marked unhealthy by its TLS probe');
            assert.equal(hcExpired.requests.length, 0, 'no probe request was sent to a backend that did not verify');
            assert.doesNotMatch(g.stderr, new RegExp(`127\\.0\\.0\\.1:${hcGood.port} unhealthy`));
            const r = await get(p2, '/hc-good/x');
            assert.equal(r.status, 200, r.body);
        })();
    } finally {
        hcGood.close();
        hcExpired.close();
    }
});

/* ---- configs that are refused: --check exits 1 and names the line ---- */

const refusals = () => {
    const base = extra => gwYaml({ port: 8080, routes: [{ path: '/', svc: 'svc' }], extra: [service('svc', 8443), ...extra] });
    const pol = v => policy('p', 'svc', v);
    return [
        {
            what: 'a caCertificateRef to a ConfigMap that is not there',
            yaml: base([pol('hostname: svc.test\ncaCertificateRefs: [{kind: ConfigMap, name: nope}]')]),
            marker: 'name: nope', msg: /BackendTLSPolicy default\/p: caCertificateRef to ConfigMap default\/nope \(InvalidCACertificateRef\): no such object/,
        },
        {
            what: 'a CA that is not PEM',
            yaml: base(['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca}\ndata: {ca.crt: "hello"}\n',
                pol('hostname: svc.test\ncaCertificateRefs: [{kind: ConfigMap, name: ca}]')]),
            marker: 'name: ca}]', msg: /\(InvalidCACertificateRef\): ca\.crt holds no PEM certificate/,
        },
        {
            what: 'a CA in another namespace without a ReferenceGrant',
            yaml: base([configMap('ca', caA.crt).replace('{name: ca}', '{name: ca, namespace: certs}'),
                pol('hostname: svc.test\ncaCertificateRefs: [{kind: ConfigMap, name: ca, namespace: certs}]')]),
            marker: 'namespace: certs}]', msg: /caCertificateRef to ConfigMap certs\/ca is not permitted \(RefNotPermitted\)/,
        },
        {
            what: 'a client certificate Secret in another namespace without a ReferenceGrant',
            yaml: gwYaml({ port: 8080, routes: [{ path: '/', svc: 'svc' }],
                tlsBackend: '  tls:\n    backend:\n      clientCertificateRef: {kind: Secret, name: c, namespace: certs}\n',
                extra: [service('svc', 8443), secretYaml('c', clientCert).replace('{name: c}', '{name: c, namespace: certs}')] }),
            marker: 'namespace: certs}', msg: /clientCertificateRef to Secret certs\/c is not permitted \(RefNotPermitted\)/,
        },
        {
            what: 'an unknown field in validation',
            yaml: base([configMap('ca', caA.crt), pol('hostname: svc.test\ncaCertificateRefs: [{kind: ConfigMap, name: ca}]\nverifyDepth: 2')]),
            marker: 'verifyDepth', msg: /BackendTLSPolicy validation: unknown field "verifyDepth"/,
        },
        {
            what: 'spec.options',
            yaml: base([policy('p', 'svc', 'hostname: svc.test\nwellKnownCACertificates: System') + '  options: {example.com/ciphers: x}\n']),
            marker: 'options:', msg: /spec\.options is not supported/,
        },
        {
            what: 'a policy without a hostname',
            yaml: base([pol('wellKnownCACertificates: System')]),
            marker: 'wellKnownCACertificates: System', msg: /missing required field "hostname"/,
        },
        {
            what: 'a sectionName that names no port of the Service',
            yaml: base([policy('p', 'svc', 'hostname: svc.test\nwellKnownCACertificates: System', { section: 'grpc' })]),
            marker: 'sectionName: grpc', msg: /Service default\/svc has no port named "grpc" \(TargetNotFound\)/,
        },
        {
            what: 'a targetRef to a Gateway',
            yaml: base([pol('hostname: svc.test\nwellKnownCACertificates: System').replace('kind: Service, name: svc', 'kind: Gateway, name: gw')]),
            marker: 'kind: Gateway, name: gw', msg: /targetRef Gateway is not served: only a core Service/,
        },
        {
            what: 'HealthCheckPolicy useTLS: true on a Service without a BackendTLSPolicy',
            yaml: base([`apiVersion: ${ALB}\nkind: HealthCheckPolicy\nmetadata: {name: h}\nspec:\n  targetRef: {group: "", kind: Service, name: svc}\n  default: {useTLS: true}\n`]),
            marker: 'useTLS: true', msg: /useTLS is true, but no BackendTLSPolicy applies to Service default\/svc/,
        },
    ];
};

test('configs that cannot be enforced are refused with FILE:LINE:COL', async () => {
    for (const c of refusals()) {
        const file = writeTemp('btls.yaml', c.yaml);
        const r = await runGateway(['--check', '-c', file]);
        assert.equal(r.code, 1, `${c.what}: --check must fail\n${r.stderr}`);
        assert.match(r.stderr, c.msg, c.what);
        const lines = c.yaml.split('\n');
        const i = lines.findIndex(l => l.includes(c.marker));
        assert.ok(i >= 0, `test setup: no line with ${c.marker}`);
        const want = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${i + 1}:\\d+: .*`);
        assert.ok(r.stderr.split('\n').some(l => want.test(l) && c.msg.test(l)), `${c.what}: not at line ${i + 1}\n${r.stderr}`);
    }
});
