// mtls.test.mjs: client certificates (frontend mTLS) with real clients: curl --cert over HTTP/1.1 and HTTP/2,
// openssl s_client, Node's TLS client. Certificates are made at test time with openssl.
//
// Gateway API's conformance test GatewayFrontendClientCertificateValidation, in our own words: a Gateway whose
// spec.tls.frontend.default.validation names a CA (a ConfigMap with ca.crt) serves a client that presents a
// certificate signed by that CA, and refuses, during the TLS handshake, a client that presents none or one signed
// by another CA; so no request from such a client reaches a route. Here also: the AllowInsecureFallback mode,
// perPort overrides, AGC's FrontendTLSPolicy, the X-Forwarded-Client-Cert header the backend gets (and that a
// client can never forge), and the configs that must be refused (a missing ConfigMap, a CA that is not PEM, a
// reference to another namespace without a ReferenceGrant).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { makeCert, secretYaml } from '../h2probe/tlsconf.mjs';
import { echoBackend } from './lib/backends.mjs';
import { freePort, run, runGateway, setup, startGateway, tmpDir, withLogs, writeTemp } from './lib/harness.mjs';

setup();

const GW = 'gateway.networking.k8s.io';
const ALB = 'alb.networking.azure.io/v1';

function openssl(args) {
    execFileSync('openssl', args, { stdio: 'ignore' });
}

/* A self-signed CA: {crt, crtFile, keyFile}. */
function makeCA(name) {
    const dir = fs.mkdtempSync(path.join(tmpDir(), `ca-${name}-`));
    const crtFile = path.join(dir, 'ca.crt');
    const keyFile = path.join(dir, 'ca.key');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign',
        '-keyout', keyFile, '-out', crtFile]);
    return { crt: fs.readFileSync(crtFile, 'utf8'), crtFile, keyFile, dir };
}

/* A client certificate signed by ca: {crt, crtFile, keyFile, der}. days < 0 makes it expired. */
function makeClient(ca, subj, { days = 2, san } = {}) {
    const dir = fs.mkdtempSync(path.join(tmpDir(), 'client-'));
    const keyFile = path.join(dir, 'c.key');
    const csr = path.join(dir, 'c.csr');
    const crtFile = path.join(dir, 'c.crt');
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subj,
        '-keyout', keyFile, '-out', csr]);
    const args = ['x509', '-req', '-in', csr, '-CA', ca.crtFile, '-CAkey', ca.keyFile, '-CAcreateserial',
        '-days', String(days), '-out', crtFile];
    if (san) {
        const ext = path.join(dir, 'ext.cnf');
        fs.writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=clientAuth\n`);
        args.push('-extfile', ext);
    }
    openssl(args);
    const crt = fs.readFileSync(crtFile, 'utf8');
    return { crt, crtFile, keyFile, der: new crypto.X509Certificate(crt).raw };
}

const indent = (s, n) => s.trimEnd().split('\n').map(l => ' '.repeat(n) + l).join('\n');
const configMap = (name, pem, ns = 'default') =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${ns}}\ndata:\n  ca.crt: |\n${indent(pem, 4)}\n`;

/* One Gateway; listeners: [{name, port, protocol}]; tlsBlock: the spec.tls YAML (indented 2) or ''. */
function gwYaml({ listeners, tlsBlock = '', echoPort, extra = [] }) {
    const ls = listeners.map(l => {
        let s = `  - name: ${l.name}\n    protocol: ${l.protocol || 'HTTPS'}\n    port: ${l.port}\n`;
        if ((l.protocol || 'HTTPS') === 'HTTPS')
            s += `    tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: server}]}\n`;
        return s;
    }).join('');
    return [`apiVersion: ${GW}/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
${tlsBlock}  listeners:
${ls}`, secretYaml('server', serverCert), `apiVersion: ${GW}/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: 127.0.0.1, port: ${echoPort}}]
`, ...extra].join('---\n');
}

const caRef = r => `{group: "", kind: ${r.kind || 'ConfigMap'}, name: ${r.name}` + (r.ns ? `, namespace: ${r.ns}` : '') + '}';
const validation = (refs, mode) =>
    'validation:\n  caCertificateRefs: [' + refs.map(caRef).join(', ') + ']\n' + (mode ? `  mode: ${mode}\n` : '');
const frontend = ({ def, perPort = [] }) => {
    let s = '  tls:\n    frontend:\n      default:\n' + indent(def, 8) + '\n';
    if (perPort.length) {
        s += '      perPort:\n';
        for (const p of perPort) s += `      - port: ${p.port}\n        tls:\n` + indent(p.val, 10) + '\n';
    }
    return s;
};

let serverCert, caA, caB, goodA, goodA2, fromB, expiredA, echo;
let strict, fallback, mixed, policy; // gateways
let pStrict, pFallback, pDefault, pOverride, pPolicy;

before(async () => {
    serverCert = makeCert('gw.test');
    caA = makeCA('ca-a');
    caB = makeCA('ca-b');
    goodA = makeClient(caA, '/CN=alice/O=Tenant A', { san: 'URI:spiffe://a.test/alice,DNS:alice.a.test' });
    goodA2 = makeClient(caA, '/CN=bob', { san: 'DNS:bob.a.test' });
    fromB = makeClient(caB, '/CN=mallory');
    expiredA = makeClient(caA, '/CN=old', { days: -1 });
    echo = await echoBackend();
    [pStrict, pFallback, pDefault, pOverride, pPolicy] = await Promise.all([0, 1, 2, 3, 4].map(() => freePort()));
    strict = await startGateway({
        yaml: gwYaml({ listeners: [{ name: 'https', port: pStrict }], echoPort: echo.port,
            tlsBlock: frontend({ def: validation([{ name: 'ca-a' }]) }), extra: [configMap('ca-a', caA.crt)] }),
        waitPorts: [pStrict],
    });
    fallback = await startGateway({
        yaml: gwYaml({ listeners: [{ name: 'https', port: pFallback }], echoPort: echo.port,
            tlsBlock: frontend({ def: validation([{ name: 'ca-a' }], 'AllowInsecureFallback') }),
            extra: [configMap('ca-a', caA.crt)] }),
        waitPorts: [pFallback],
    });
    /* default: CA A, strict; perPort pOverride: CA B with fallback. */
    mixed = await startGateway({
        yaml: gwYaml({ listeners: [{ name: 'a', port: pDefault }, { name: 'b', port: pOverride }], echoPort: echo.port,
            tlsBlock: frontend({ def: validation([{ name: 'ca-a' }]),
                perPort: [{ port: pOverride, val: validation([{ name: 'ca-b' }], 'AllowInsecureFallback') }] }),
            extra: [configMap('ca-a', caA.crt), configMap('ca-b', caB.crt)] }),
        waitPorts: [pDefault, pOverride],
    });
    /* AGC's FrontendTLSPolicy with a Secret ca.crt and a subjectAltName. */
    policy = await startGateway({
        yaml: gwYaml({ listeners: [{ name: 'mtls', port: pPolicy }], echoPort: echo.port, extra: [
            `apiVersion: v1\nkind: Secret\nmetadata: {name: ca.bundle}\ntype: Opaque\ndata:\n  ca.crt: ${Buffer.from(caA.crt).toString('base64')}\n`,
            `apiVersion: ${ALB}\nkind: FrontendTLSPolicy\nmetadata: {name: mtls-policy}\nspec:\n  targetRef: {group: ${GW}, kind: Gateway, name: gw, sectionNames: [mtls]}\n` +
            `  default:\n    verify:\n      caCertificateRef: {group: "", kind: Secret, name: ca.bundle}\n      subjectAltName: spiffe://a.test/alice\n`,
        ] }),
        waitPorts: [pPolicy],
    });
});

after(() => echo?.close?.());

/* curl over TLS; cert: a client certificate or null. Returns {code, status, body}. */
async function curl(port, cert, { http2 = false, headers = [], pathName = '/whoami' } = {}) {
    const args = ['-sS', '-k', '--max-time', '10', '-o', '-', '-w', '\n%{http_code}', http2 ? '--http2' : '--http1.1'];
    if (cert) args.push('--cert', cert.crtFile, '--key', cert.keyFile);
    for (const h of headers) args.push('-H', h);
    args.push(`https://127.0.0.1:${port}${pathName}`);
    const { code, stdout, stderr } = await run('curl', args);
    const i = stdout.lastIndexOf('\n');
    return { code, status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i), stderr };
}

const seen = tag => echo.requests.filter(r => r.url.includes(tag));
const sha256 = der => crypto.createHash('sha256').update(der).digest('hex');

for (const http2 of [false, true]) {
    const v = http2 ? 'HTTP/2' : 'HTTP/1.1';
    test(`AllowValidOnly, ${v}: a certificate from the CA gets through, and the backend learns who it is`,
        withLogs(() => [strict], async () => {
            const tag = `/good-${http2}`;
            const r = await curl(pStrict, goodA, { http2, pathName: tag });
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.status, 200);
            const [req] = seen(tag);
            assert.ok(req, 'the backend got the request');
            const xfcc = req.headers['x-forwarded-client-cert'];
            assert.equal(xfcc, `Hash=${sha256(goodA.der)};Subject="O=Tenant A,CN=alice";URI=spiffe://a.test/alice;` +
                'DNS=alice.a.test;Verified=true');
        }));

    test(`AllowValidOnly, ${v}: no certificate, another CA's, or an expired one: the handshake fails, nothing reaches the backend`,
        withLogs(() => [strict], async () => {
            for (const [what, cert] of [['none', null], ['other-ca', fromB], ['expired', expiredA]]) {
                const tag = `/refused-${what}-${http2}`;
                const r = await curl(pStrict, cert, { http2, pathName: tag });
                assert.notEqual(r.code, 0, `${what}: curl must fail, got ${r.status}`);
                assert.equal(r.status, 0, `${what}: no HTTP response at all`);
                assert.equal(seen(tag).length, 0, `${what}: nothing reached the backend`);
            }
        }));

    test(`a client's own X-Forwarded-Client-Cert never reaches the backend (${v})`,
        withLogs(() => [strict, fallback], async () => {
            const forged = 'X-Forwarded-Client-Cert: Hash=00;Subject="CN=admin";Verified=true';
            const tag = `/forged-${http2}`;
            const r1 = await curl(pStrict, goodA2, { http2, headers: [forged], pathName: tag + '-strict' });
            assert.equal(r1.status, 200, r1.stderr);
            const r2 = await curl(pFallback, null, { http2, headers: [forged], pathName: tag + '-fallback' });
            assert.equal(r2.status, 200, r2.stderr);
            const [a] = seen(tag + '-strict');
            const [b] = seen(tag + '-fallback');
            assert.equal(a.headers['x-forwarded-client-cert'], `Hash=${sha256(goodA2.der)};Subject="CN=bob";` +
                'DNS=bob.a.test;Verified=true');
            assert.equal(b.headers['x-forwarded-client-cert'], 'Verified=false');
            for (const rq of [a, b])
                assert.equal(rq.rawHeaders.filter((x, i) => i % 2 === 0 && /^x-forwarded-client-cert$/i.test(x)).length, 1);
        }));
}

test('a forged X-Forwarded-Client-Cert is removed on a listener without client certificates too', withLogs(() => [mixed], async () => {
    const port = await freePort();
    const plain = await startGateway({
        yaml: gwYaml({ listeners: [{ name: 'http', port, protocol: 'HTTP' }], echoPort: echo.port }),
        waitPorts: [port],
    });
    const { code, stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H',
        'X-Forwarded-Client-Cert: Hash=00;Subject="CN=admin";Verified=true', `http://127.0.0.1:${port}/plain-forged`]);
    assert.equal(code, 0);
    assert.equal(stdout, '200');
    const [req] = seen('/plain-forged');
    assert.equal(req.headers['x-forwarded-client-cert'], undefined);
    await plain.stop();
}));

test('AllowInsecureFallback: served without a certificate, or with one from another CA, and the backend is told', withLogs(() => [fallback], async () => {
    const r0 = await curl(pFallback, null, { pathName: '/fb-none' });
    assert.equal(r0.status, 200, r0.stderr);
    assert.equal(seen('/fb-none')[0].headers['x-forwarded-client-cert'], 'Verified=false');
    const r1 = await curl(pFallback, fromB, { pathName: '/fb-other' });
    assert.equal(r1.status, 200, r1.stderr);
    assert.equal(seen('/fb-other')[0].headers['x-forwarded-client-cert'],
        `Hash=${sha256(fromB.der)};Subject="CN=mallory";Verified=false`);
    const r2 = await curl(pFallback, goodA, { http2: true, pathName: '/fb-good' });
    assert.equal(r2.status, 200, r2.stderr);
    assert.match(seen('/fb-good')[0].headers['x-forwarded-client-cert'], /^Hash=[0-9a-f]{64};.*;Verified=true$/);
}));

test('AllowInsecureFallback: a hostile subject cannot break the header (quotes, backslashes, bytes outside ASCII)', withLogs(() => [fallback], async () => {
    /* From another CA, so it does not verify: under fallback its subject still reaches the header, escaped. */
    const evil = makeClient(caB, '/CN=a"b;d=e/O=\u00e9vil', { san: 'DNS:x.test' });
    const r = await curl(pFallback, evil, { pathName: '/fb-evil' });
    assert.equal(r.status, 200, r.stderr);
    const v = seen('/fb-evil')[0].headers['x-forwarded-client-cert'];
    assert.ok(!/[\r\n\x00-\x1f\x7f-\uffff]/.test(v), v);
    /* OpenSSL's RFC 2253 form escapes '"', ';' and the bytes of the UTF-8 'é' with '\\'; the header then escapes
     * every '\\' and '"' again inside its quotes. */
    assert.equal(v, `Hash=${sha256(evil.der)};Subject=` + String.raw`"O=\\C3\\83\\C2\\A9vil,CN=a\\\"b\\;d=e"` +
        ';DNS=x.test;Verified=false');
}));

test('openssl s_client without a certificate: the handshake fails with an alert (AllowValidOnly)', withLogs(() => [strict], async () => {
    /* stdin is /dev/null: s_client ends right after the handshake, or, with -ign_eof, when the server closes.
     * Under TLS 1.3 the client's side of the handshake is over before the server has read its (empty) certificate,
     * so the refusal comes as an alert just after: -ign_eof waits for it. */
    for (const ver of ['-tls1_2', '-tls1_3']) {
        const bad = await run('openssl', ['s_client', '-connect', `127.0.0.1:${pStrict}`, ver, '-ign_eof'],
            { timeout: 10000 });
        assert.match(bad.stdout + bad.stderr, /alert (handshake failure|certificate required)/, ver);
        const ok = await run('openssl', ['s_client', '-connect', `127.0.0.1:${pStrict}`, ver, '-cert', goodA.crtFile,
            '-key', goodA.keyFile], { timeout: 10000 });
        assert.equal(ok.code, 0, ok.stderr);
        assert.doesNotMatch(ok.stdout + ok.stderr, /alert/, ver);
        assert.match(ok.stdout, /Verify return code: /);
    }
}));

test('the CertificateRequest names the CA, so a client can choose its certificate', withLogs(() => [strict], async () => {
    const names = await new Promise((resolve, reject) => {
        const s = tls.connect({ port: pStrict, host: '127.0.0.1', rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
        s.on('error', () => resolve(null));
        s.once('secureConnect', () => resolve('connected'));
        setTimeout(() => { s.destroy(); reject(new Error('no answer')); }, 10000).unref();
    });
    /* Without a certificate the strict listener must refuse even this client. */
    assert.equal(names, null);
    const { stdout, stderr } = await run('openssl', ['s_client', '-connect', `127.0.0.1:${pStrict}`, '-tls1_2',
        '-cert', goodA.crtFile, '-key', goodA.keyFile], { timeout: 10000 });
    assert.match(stdout + stderr, /Acceptable client certificate CA names\s*\n\s*CN ?= ?ca-a/);
}));

test('perPort: one port keeps the default (CA A, strict), the other takes its override (CA B, fallback)', withLogs(() => [mixed], async () => {
    assert.equal((await curl(pDefault, goodA, { pathName: '/pp-a-good' })).status, 200);
    assert.equal((await curl(pDefault, fromB, { pathName: '/pp-a-b' })).status, 0);
    assert.equal((await curl(pDefault, null, { pathName: '/pp-a-none' })).status, 0);
    assert.equal((await curl(pOverride, fromB, { pathName: '/pp-b-b' })).status, 200);
    assert.match(seen('/pp-b-b')[0].headers['x-forwarded-client-cert'], /Subject="CN=mallory";Verified=true$/);
    assert.equal((await curl(pOverride, goodA, { pathName: '/pp-b-a' })).status, 200);
    assert.match(seen('/pp-b-a')[0].headers['x-forwarded-client-cert'], /Verified=false$/);
    assert.equal(seen('/pp-a-b').length + seen('/pp-a-none').length, 0);
}));

test("AGC's FrontendTLSPolicy: the CA from a Secret, and the subjectAltName the certificate must carry", withLogs(() => [policy], async () => {
    const ok = await curl(pPolicy, goodA, { http2: true, pathName: '/pol-alice' });
    assert.equal(ok.status, 200, ok.stderr);
    assert.match(seen('/pol-alice')[0].headers['x-forwarded-client-cert'], /URI=spiffe:\/\/a\.test\/alice;.*Verified=true$/);
    for (const [what, cert] of [['bob (right CA, wrong SAN)', goodA2], ['other CA', fromB], ['none', null]]) {
        const r = await curl(pPolicy, cert, { pathName: '/pol-refused' });
        assert.equal(r.status, 0, what);
    }
    assert.equal(seen('/pol-refused').length, 0);
}));

/* ---- configs that are refused ---- */

async function check(yaml) {
    const file = writeTemp('mtls.yaml', yaml);
    const r = await runGateway(['--check', '-c', file]);
    return { ...r, file, lines: yaml.split('\n') };
}
function lineOf(lines, needle) {
    const i = lines.findIndex(l => l.includes(needle));
    assert.ok(i >= 0, `test setup: no line with ${needle}`);
    return i + 1;
}

const refusals = () => [
    {
        what: 'a caCertificateRef to a ConfigMap that is not there',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'nope' }]) }) }),
        marker: 'name: nope', msg: /caCertificateRef to ConfigMap default\/nope \(InvalidCACertificateRef\): no such object/,
    },
    {
        what: 'a ConfigMap without ca.crt',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'ca' }]) }),
            extra: ['apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ca}\ndata: {other: x}\n'] }),
        marker: 'name: ca}', msg: /has no key ca\.crt/,
    },
    {
        what: 'a CA that is not PEM',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'ca' }]) }),
            extra: [configMap('ca', 'this is not a certificate')] }),
        marker: 'name: ca}', msg: /\(InvalidCACertificateRef\): ca\.crt holds no PEM certificate/,
    },
    {
        what: 'a CA ConfigMap in another namespace without a ReferenceGrant',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'ca', ns: 'pki' }]) }),
            extra: [configMap('ca', caA.crt, 'pki')] }),
        marker: 'namespace: pki}', msg: /caCertificateRef to ConfigMap pki\/ca is not permitted \(RefNotPermitted\)/,
    },
    {
        what: 'a caCertificateRef of a kind that is not served',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ kind: 'ClusterTrustBundle', name: 'x' }]) }) }),
        marker: 'ClusterTrustBundle', msg: /InvalidCACertificateKind/,
    },
    {
        what: 'a mode that does not exist',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'ca' }], 'AllowAll') }),
            extra: [configMap('ca', caA.crt)] }),
        marker: 'mode: AllowAll', msg: /mode "AllowAll" is not AllowValidOnly or AllowInsecureFallback/,
    },
    {
        what: 'perPort for a port with no HTTPS listener',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'ca' }]),
            perPort: [{ port: 9443, val: validation([{ name: 'ca' }]) }] }), extra: [configMap('ca', caA.crt)] }),
        marker: 'port: 9443', msg: /perPort port 9443 has no HTTPS listener/,
    },
    {
        what: 'spec.tls.backend naming a Secret that is not in the config (TLS to backends: backend-tls.test.mjs)',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1,
            tlsBlock: '  tls:\n    backend: {clientCertificateRef: {name: client}}\n' }),
        marker: 'clientCertificateRef', msg: /clientCertificateRef to Secret default\/client \(InvalidCertificateRef\)/,
    },
    {
        what: 'FrontendTLSPolicy policyType (a named TLS policy)',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, extra: [configMap('ca', caA.crt).replace('ConfigMap', 'ConfigMap'),
            `apiVersion: ${ALB}\nkind: FrontendTLSPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {group: ${GW}, kind: Gateway, name: gw}\n` +
            `  default:\n    policyType: {type: predefined, name: 2023-06}\n    verify:\n      caCertificateRef: {kind: ConfigMap, name: ca}\n`] }),
        marker: 'policyType', msg: /policyType is not supported/,
    },
    {
        what: 'FrontendTLSPolicy and spec.tls on one listener',
        yaml: gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1, tlsBlock: frontend({ def: validation([{ name: 'ca' }]) }),
            extra: [configMap('ca', caA.crt),
                `apiVersion: ${ALB}\nkind: FrontendTLSPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {group: ${GW}, kind: Gateway, name: gw}\n` +
                `  default:\n    verify:\n      caCertificateRef: {kind: ConfigMap, name: ca}\n`] }),
        marker: 'targetRef', msg: /given by both Gateway default\/gw spec\.tls\.frontend\.default and FrontendTLSPolicy default\/p \(Conflicted\)/,
    },
    {
        what: 'a route filter that would set X-Forwarded-Client-Cert',
        yaml: gwYaml({ listeners: [{ name: 'http', port: 8080, protocol: 'HTTP' }], echoPort: 1 }).replace('  - backendRefs:',
            '  - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: X-Forwarded-Client-Cert, value: "Hash=00"}]}}]\n    backendRefs:'),
        marker: 'X-Forwarded-Client-Cert', msg: /set by the gateway from the client's certificate/,
    },
];

test('refused configs: each names its line and exits 1 (--check)', async () => {
    for (const c of refusals()) {
        const r = await check(c.yaml);
        assert.equal(r.code, 1, `${c.what}: exit 1\n${r.stderr}`);
        const line = lineOf(r.lines, c.marker);
        const re = new RegExp(`${r.file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}:\\d+: `);
        const hit = r.stderr.split('\n').find(l => re.test(l) && c.msg.test(l));
        assert.ok(hit, `${c.what}: expected line ${line} matching ${c.msg}\n${r.stderr}`);
    }
});

test('a CA ConfigMap in another namespace loads with a ReferenceGrant from Gateways', async () => {
    const yaml = gwYaml({ listeners: [{ name: 'https', port: 8443 }], echoPort: 1,
        tlsBlock: frontend({ def: validation([{ name: 'ca', ns: 'pki' }]) }), extra: [configMap('ca', caA.crt, 'pki'),
            `apiVersion: ${GW}/v1beta1\nkind: ReferenceGrant\nmetadata: {name: g, namespace: pki}\nspec:\n` +
            `  from: [{group: ${GW}, kind: Gateway, namespace: default}]\n  to: [{group: "", kind: ConfigMap, name: ca}]\n`] });
    const r = await check(yaml);
    assert.equal(r.code, 0, r.stderr);
});

test('two listeners on one port must not differ in client validation', async () => {
    /* A FrontendTLSPolicy on one of two listeners sharing a port: SNI and Host need not agree, so it is refused. */
    const yaml = gwYaml({ listeners: [{ name: 'a', port: 8443 }], echoPort: 1, extra: [configMap('ca', caA.crt),
        `apiVersion: ${ALB}\nkind: FrontendTLSPolicy\nmetadata: {name: p}\nspec:\n  targetRef: {group: ${GW}, kind: Gateway, name: gw, sectionNames: [a]}\n` +
        `  default:\n    verify:\n      caCertificateRef: {kind: ConfigMap, name: ca}\n`] })
        .replace('  - name: a\n', '  - name: b\n    protocol: HTTPS\n    port: 8443\n    hostname: b.test\n' +
            '    tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: server}]}\n  - name: a\n    hostname: a.test\n');
    const r = await check(yaml);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /share the port but not their client-certificate validation/);
});
