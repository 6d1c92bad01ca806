// namespaces.test.mjs: namespace boundaries. Listener allowedRoutes (Same by default, All, Selector over Namespace
// labels, kinds) and ReferenceGrant for backendRefs and certificateRefs to other namespaces. Restates, in our own
// words, the Gateway API conformance tests GatewayWithAttachedRoutes, HTTPRouteReferenceGrant,
// HTTPRouteInvalidCrossNamespaceBackendRef and HTTPRouteInvalidCrossNamespaceParentRef, for a config file (where a
// route that cannot attach is an error; the status reasons appear in the message).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { echoBackend } from './lib/backends.mjs';
import { freePort, runGateway, setup, startGateway, writeTemp } from './lib/harness.mjs';
import { request } from './lib/rawhttp.mjs';

setup();
let be;
before(async () => {
    be = await echoBackend();
});

const GW = 'gateway.networking.k8s.io';

function gateway(port, { allowedRoutes = '', ns = 'infra', extraListener = '' } = {}) {
    return `apiVersion: ${GW}/v1
kind: Gateway
metadata: {name: gw, namespace: ${ns}}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - name: http
    port: ${port}
    protocol: HTTP
${allowedRoutes}${extraListener}`;
}

function route(name, ns, { path = '/', backendNs, gwNs = 'infra', section } = {}) {
    return `---
apiVersion: ${GW}/v1
kind: HTTPRoute
metadata: {name: ${name}, namespace: ${ns}}
spec:
  parentRefs: [{name: gw, namespace: ${gwNs}${section ? `, sectionName: ${section}` : ''}}]
  rules:
  - matches: [{path: {type: PathPrefix, value: ${path}}}]
    backendRefs: [{name: 127.0.0.1, port: ${be.port}${backendNs ? `, namespace: ${backendNs}` : ''}}]
`;
}

const namespace = (name, labels) => `---
apiVersion: v1
kind: Namespace
metadata: {name: ${name}, labels: {${Object.entries(labels).map(([k, v]) => `${k}: ${v}`).join(', ')}}}
`;

const grant = (ns, fromKind, fromNs, toKind, toName) => `---
apiVersion: ${GW}/v1beta1
kind: ReferenceGrant
metadata: {name: g-${fromNs}, namespace: ${ns}}
spec:
  from: [{group: ${GW}, kind: ${fromKind}, namespace: ${fromNs}}]
  to: [{group: "", kind: ${toKind}${toName ? `, name: ${toName}` : ''}}]
`;

async function check(yaml) {
    const f = writeTemp('ns.yaml', yaml);
    const r = await runGateway(['--check', '-c', f]);
    return { ...r, file: f, yaml };
}

const lineOf = (yaml, marker, from = 0) => yaml.split('\n').findIndex((l, i) => i >= from && l.includes(marker)) + 1;

/* Serves yaml and returns the status of GET path on port; the gateway is stopped after. */
async function statusOf(yaml, port, paths) {
    const gw = await startGateway({ yaml, args: ['--access-log', 'off'], waitPorts: [port] });
    try {
        const out = [];
        for (const p of paths)
            out.push((await request(port, { path: p })).status);
        return { statuses: out, stderr: gw.stderr };
    } catch (e) {
        e.message += '\n' + gw.logs();
        throw e;
    } finally {
        await gw.stop();
    }
}

test('allowedRoutes default (Same): a route of another namespace is refused with NotAllowedByListeners', async () => {
    const port = await freePort();
    const r = await check(gateway(port) + route('r', 'infra', { path: '/a' }) + route('other', 'team-b', { path: '/b' }));
    assert.equal(r.code, 1, r.stderr);
    const at = lineOf(r.yaml, 'parentRefs', lineOf(r.yaml, 'name: other'));
    assert.match(r.stderr, new RegExp(`^${r.file.replace(/[.]/g, '\\.')}:${at}:\\d+: HTTPRoute team-b/other: not allowed by the listeners of Gateway infra/gw \\(NotAllowedByListeners\\): listener "http" admits routes from namespaces: Same \\(infra\\)$`, 'm'));
});

test('allowedRoutes Same written out: the same namespace attaches and serves', async () => {
    const port = await freePort();
    const yaml = gateway(port, { allowedRoutes: '    allowedRoutes: {namespaces: {from: Same}}\n' }) + route('r', 'infra');
    const { statuses } = await statusOf(yaml, port, ['/x']);
    assert.deepEqual(statuses, [200]);
});

test('allowedRoutes All: routes of any namespace attach', async () => {
    const port = await freePort();
    const yaml = gateway(port, { allowedRoutes: '    allowedRoutes: {namespaces: {from: All}}\n' }) +
        route('a', 'team-a', { path: '/a' }) + route('b', 'team-b', { path: '/b' });
    const { statuses } = await statusOf(yaml, port, ['/a', '/b']);
    assert.deepEqual(statuses, [200, 200]);
});

test('allowedRoutes Selector: Namespace labels decide, and kubernetes.io/metadata.name is implied', async () => {
    const port = await freePort();
    const sel = '    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector:\n' +
        '          matchLabels: {shared-gateway-access: "true"}\n';
    const base = gateway(port, { allowedRoutes: sel }) + namespace('team-a', { 'shared-gateway-access': '"true"' }) +
        namespace('team-b', { 'shared-gateway-access': '"false"' });
    const ok = base + route('a', 'team-a', { path: '/a' });
    assert.deepEqual((await statusOf(ok, port, ['/a'])).statuses, [200]);
    const refused = await check(base + route('a', 'team-a', { path: '/a' }) + route('b', 'team-b', { path: '/b' }));
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /HTTPRoute team-b\/b: not allowed by the listeners of Gateway infra\/gw \(NotAllowedByListeners\): listener "http" admits routes from namespaces: Selector/);
    /* An expression on the implied name label admits a namespace that has no Namespace document. */
    const byName = gateway(port, {
        allowedRoutes: '    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector:\n' +
            '          matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [team-c]}]\n',
    }) + route('c', 'team-c', { path: '/c' });
    assert.deepEqual((await statusOf(byName, port, ['/c'])).statuses, [200]);
    const notIn = await check(byName.replace('operator: In', 'operator: NotIn'));
    assert.equal(notIn.code, 1, notIn.stderr);
    assert.match(notIn.stderr, /HTTPRoute team-c\/c: not allowed by the listeners/);
});

test('a parentRef with sectionName attaches only where that listener allows it', async () => {
    const port = await freePort(), port2 = await freePort();
    const second = `  - name: open\n    port: ${port2}\n    protocol: HTTP\n    allowedRoutes: {namespaces: {from: All}}\n`;
    const yaml = gateway(port, { extraListener: second }) + route('b', 'team-b', { path: '/b', section: 'open' });
    const f = writeTemp('ns.yaml', yaml);
    const gw = await startGateway({ config: f, args: ['--access-log', 'off'], waitPorts: [port, port2] });
    try {
        assert.equal((await request(port2, { path: '/b' })).status, 200);
        assert.equal((await request(port, { path: '/b' })).status, 404);
    } catch (e) {
        e.message += '\n' + gw.logs();
        throw e;
    } finally {
        await gw.stop();
    }
    const refused = await check(yaml.replace('sectionName: open', 'sectionName: http'));
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /NotAllowedByListeners/);
});

test('allowedRoutes values that cannot be enforced are refused, each at its line', async () => {
    const port = await freePort();
    const cases = [
        { ar: '    allowedRoutes: {namespaces: {from: Elsewhere}}\n', marker: 'Elsewhere', msg: /is not Same, All or Selector/ },
        { ar: '    allowedRoutes: {namespaces: {from: Selector}}\n', marker: 'Selector', msg: /needs a selector/ },
        {
            ar: '    allowedRoutes: {namespaces: {from: All, selector: {matchLabels: {a: b}}}}\n',
            marker: 'selector',
            msg: /applies only with from: Selector/,
        },
        {
            ar: '    allowedRoutes: {kinds: [{group: gateway.networking.k8s.io, kind: TLSRoute}]}\n',
            marker: 'TLSRoute',
            msg: /allowedRoutes kind gateway\.networking\.k8s\.io\/TLSRoute is not served \(InvalidRouteKinds\)/,
        },
        { ar: '    allowedRoutes: {kinds: []}\n', marker: 'kinds', msg: /allowedRoutes\.kinds is empty/ },
        {
            ar: '    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector:\n' +
                '          matchExpressions: [{key: a, operator: Near, values: [b]}]\n',
            marker: 'Near',
            msg: /operator "Near" is not In, NotIn, Exists or DoesNotExist/,
        },
        {
            ar: '    allowedRoutes:\n      namespaces:\n        from: Selector\n        selector:\n' +
                '          matchExpressions: [{key: a, operator: In, values: []}]\n',
            marker: 'operator: In',
            msg: /needs a non-empty values list/,
        },
    ];
    for (const c of cases) {
        const r = await check(gateway(port, { allowedRoutes: c.ar }) + route('r', 'infra'));
        assert.equal(r.code, 1, `${c.marker}: ${r.stderr}`);
        assert.match(r.stderr, c.msg, c.marker);
        const at = lineOf(r.yaml, c.marker);
        assert.ok(r.stderr.split('\n').some(l => l.startsWith(`${r.file}:${at}:`) && c.msg.test(l)), `${c.marker} not reported at line ${at}: ${r.stderr}`);
    }
    /* HTTPRoute in the kinds list, with or without its group, is what is served. */
    for (const k of ['{kind: HTTPRoute}', `{group: ${GW}, kind: HTTPRoute}`]) {
        const r = await check(gateway(port, { allowedRoutes: `    allowedRoutes: {kinds: [${k}]}\n` }) + route('r', 'infra'));
        assert.equal(r.code, 0, r.stderr);
    }
});

test('a backendRef to another namespace gets 500 without a ReferenceGrant (RefNotPermitted), 200 with one', async () => {
    const port = await freePort();
    const base = gateway(port, { allowedRoutes: '    allowedRoutes: {namespaces: {from: All}}\n' }) +
        route('same', 'team-a', { path: '/same' }) + route('cross', 'team-a', { path: '/cross', backendNs: 'team-b' });
    const refused = await statusOf(base, port, ['/same', '/cross']);
    assert.deepEqual(refused.statuses, [200, 500]);
    assert.match(refused.stderr, /warning: HTTPRoute team-a\/cross: backendRef to Service team-b\/127\.0\.0\.1 is not permitted \(RefNotPermitted\)/);
    const checked = await check(base);
    assert.equal(checked.code, 0, 'a refused backendRef is served as 500, not a load error');
    assert.ok(checked.stderr.split('\n').some(l => l.startsWith(`${checked.file}:${lineOf(base, `namespace: team-b`)}:`) && /RefNotPermitted/.test(l)), checked.stderr);

    const granted = base + grant('team-b', 'HTTPRoute', 'team-a', 'Service');
    assert.deepEqual((await statusOf(granted, port, ['/same', '/cross'])).statuses, [200, 200]);
    const named = base + grant('team-b', 'HTTPRoute', 'team-a', 'Service', '127.0.0.1');
    assert.deepEqual((await statusOf(named, port, ['/cross'])).statuses, [200]);
    /* A grant that does not fit (another name, another namespace, another kind, another from kind) admits nothing. */
    for (const g of [
        grant('team-b', 'HTTPRoute', 'team-a', 'Service', 'other-svc'),
        grant('team-b', 'HTTPRoute', 'team-z', 'Service'),
        grant('team-b', 'HTTPRoute', 'team-a', 'Secret'),
        grant('team-b', 'Gateway', 'team-a', 'Service'),
        grant('team-a', 'HTTPRoute', 'team-a', 'Service'),
    ]) {
        assert.deepEqual((await statusOf(base + g, port, ['/cross'])).statuses, [500], g);
    }
});

test('a certificateRef to a Secret of another namespace needs a ReferenceGrant from the Gateway', async () => {
    const port = await freePort();
    const tlsGw = `apiVersion: ${GW}/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: ssegate
  listeners:
  - name: https
    port: ${port}
    protocol: HTTPS
    tls: {mode: Terminate, certificateRefs: [{kind: Secret, name: cert, namespace: certs}]}
`;
    const secret = `---
apiVersion: v1
kind: Secret
metadata: {name: cert, namespace: certs}
type: kubernetes.io/tls
data: {tls.crt: "", tls.key: ""}
`;
    const r = await check(tlsGw + secret + route('r', 'infra'));
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /listener "https": certificateRef to Secret certs\/cert is not permitted \(RefNotPermitted\): no ReferenceGrant in namespace "certs" lets Gateways of namespace "infra" refer to it/);
    const withGrant = await check(tlsGw + secret + route('r', 'infra') + grant('certs', 'Gateway', 'infra', 'Secret', 'cert'));
    assert.doesNotMatch(withGrant.stderr, /RefNotPermitted/);
});

test('the DNS fallback honours the namespace: a bare name resolves only in the default namespace', async () => {
    const port = await freePort();
    const named = (name, ns, path, backendNs) => route(name, ns, { path, backendNs }).replace('name: 127.0.0.1', 'name: localhost');
    const yaml = gateway(port, { ns: 'default', allowedRoutes: '    allowedRoutes: {namespaces: {from: All}}\n' }) +
        named('d', 'default', '/d') + named('a', 'team-a', '/a') + named('x', 'default', '/x', 'team-b') +
        grant('team-b', 'HTTPRoute', 'default', 'Service') + route('ip', 'team-a', { path: '/ip', gwNs: 'default' });
    /* default: "localhost" as written; team-a: "localhost.team-a", which does not resolve (500); a granted ref to
     * team-b: "localhost.team-b" (500); an IP address stands for itself in any namespace. */
    const fixed = yaml.replace(/namespace: infra/g, 'namespace: default');
    assert.deepEqual((await statusOf(fixed, port, ['/d', '/a', '/x', '/ip'])).statuses, [200, 500, 500, 200]);
});
