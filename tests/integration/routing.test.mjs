// routing.test.mjs: routing the peer suite leaves out, through the binary: regex matches, weights, timeout precedence, --check errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { SLOW, freePort, repoRoot, runGateway, setup, startGateway, withLogs, writeTemp } from './lib/harness.mjs';
import { backendYaml, httpRequest, runCase, startEchoBackends } from './lib/echo-backends.mjs';

setup();

const NAMES = ['backend-v1', 'backend-v2', 'backend-v3', 'catchall', 'prefix', 'rx-short', 'rx-long', 'rx-header', 'rx-query', 'exact'];
let backends;
before(async () => {
    backends = await startEchoBackends(NAMES);
});

const gatewayDoc = port => `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, protocol: HTTP, port: ${port}}
`;

async function gatewayWith(routesYaml) {
    const port = await freePort();
    const yaml = [gatewayDoc(port), routesYaml, backendYaml(backends.ports)].join('---\n');
    const gw = await startGateway({ yaml, waitPorts: [port], args: ['--workers', '1', '--access-log', 'off'] });
    return { gw, portMap: { 80: port }, port };
}

/* A case in the fixture's shape, so that the same checks apply as for the peer cases. */
const kase = (id, path, expect, { headers = {}, method = 'GET', host = null } = {}) => ({
    id,
    request: { method, scheme: 'http', port: 80, host, path, headers },
    expect: typeof expect === 'string' ? { status: 200, backend: expect } : expect,
});

/* HTTP/1.1 always; h2c prior knowledge too when the tree has src/http/h2.c (skipped with the reason otherwise). */
const H2 = fs.existsSync(path.join(repoRoot, 'src/http/h2.c')) ? false : 'no src/http/h2.c in this tree: ssegate has no HTTP/2 yet';

async function runAll(t, env, cases) {
    for (const proto of ['h1', 'h2']) {
        for (const c of cases) {
            await t.test(
                `${c.id} [${proto}]: ${c.request.method} ${c.request.path} ${JSON.stringify(c.request.headers)}`,
                { skip: (proto === 'h2' && H2) || false },
                withLogs([env.gw], async () => {
                    const errs = await runCase(c, env.portMap, { proto });
                    assert.deepEqual(errs, [], `${c.id} [${proto}]:\n  ${errs.join('\n  ')}`);
                }),
            );
        }
    }
}

/* ---- RegularExpression matches (no conformance test exists for them: our own cases) ---- */

const regexRoutes = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: catchall}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: catchall, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: rx}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/users/[0-9]+"}}]
    backendRefs: [{name: backend-v1, port: 8080}]
  - matches: [{path: {type: Exact, value: /users/42}}]
    backendRefs: [{name: exact, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /users}}]
    backendRefs: [{name: prefix, port: 8080}]
  - matches: [{path: {type: RegularExpression, value: "/files/.*\\\\.(png|jpg)"}}]
    backendRefs: [{name: backend-v2, port: 8080}]
  - matches: [{path: {type: RegularExpression, value: "/api/.*"}}]
    backendRefs: [{name: rx-short, port: 8080}]
  - matches: [{path: {type: RegularExpression, value: "/api/v[0-9]+/.*"}}]
    backendRefs: [{name: rx-long, port: 8080}]
  - matches:
    - path: {type: PathPrefix, value: /h}
      headers: [{name: X-Tenant, type: RegularExpression, value: "acme-[a-z]+"}]
    backendRefs: [{name: rx-header, port: 8080}]
  - matches:
    - path: {type: PathPrefix, value: /bt}
      headers: [{name: X-Evil, type: RegularExpression, value: "(a+)+b"}]
    backendRefs: [{name: rx-header, port: 8080}]
  - matches:
    - path: {type: PathPrefix, value: /q}
      queryParams: [{name: id, type: RegularExpression, value: "[0-9]{3}"}]
    backendRefs: [{name: rx-query, port: 8080}]
  - matches: [{path: {type: PathPrefix, value: /q}}]
    backendRefs: [{name: prefix, port: 8080}]
  - matches:
    - path: {type: PathPrefix, value: /mixed}
      headers: [{name: X-Mode, value: exact}, {name: X-Ver, type: RegularExpression, value: "v[12]"}]
      queryParams: [{name: k, type: RegularExpression, value: "[a-z]+"}]
    backendRefs: [{name: backend-v3, port: 8080}]
`;

test('RegularExpression path, header and query matches through the binary', async t => {
    const env = await gatewayWith(regexRoutes);
    await runAll(t, env, [
        kase('RX-PATH-01 regex path', '/users/7', 'backend-v1'),
        kase('RX-PATH-02 query is not part of the path', '/users/7?tab=1', 'backend-v1'),
        kase('RX-PATH-03 Exact beats RegularExpression', '/users/42', 'exact'),
        kase('RX-PATH-04 anchored at the end', '/users/7/posts', 'prefix'),
        kase('RX-PATH-05 regex beats the PathPrefix that also matches', '/users/123456', 'backend-v1'),
        kase('RX-PATH-06 no regex match: the prefix rule', '/users/abc', 'prefix'),
        kase('RX-PATH-07 anchored at the start', '/x/users/7', 'catchall'),
        kase('RX-PATH-08 alternation and escaped dot', '/files/a/b.png', 'backend-v2'),
        kase('RX-PATH-09 escaped dot is literal', '/files/apng', 'catchall'),
        kase('RX-PATH-10 other extension', '/files/a.gif', 'catchall'),
        kase('RX-PATH-11 longer pattern first', '/api/v2/items', 'rx-long'),
        kase('RX-PATH-12 shorter pattern when the longer misses', '/api/items', 'rx-short'),
        kase('RX-PATH-13 regex beats the catch-all PathPrefix /', '/api/', 'rx-short'),
        kase('RX-HDR-01 header regex', '/h', 'rx-header', { headers: { 'X-Tenant': 'acme-blue' } }),
        kase('RX-HDR-02 header name case-insensitive', '/h', 'rx-header', { headers: { 'x-tenant': 'acme-red' } }),
        kase('RX-HDR-03 header value case-sensitive', '/h', 'catchall', { headers: { 'X-Tenant': 'acme-BLUE' } }),
        kase('RX-HDR-04 header regex anchored', '/h', 'catchall', { headers: { 'X-Tenant': 'xacme-blue' } }),
        kase('RX-HDR-05 header absent', '/h', 'catchall'),
        kase('RX-HDR-06 catastrophic backtracking hits the match limit: no match, still answered', '/bt', 'catchall', {
            headers: { 'X-Evil': 'a'.repeat(40) + 'c' },
        }),
        kase('RX-HDR-07 the same regex still matches normal input', '/bt', 'rx-header', { headers: { 'X-Evil': 'aaab' } }),
        kase('RX-QUERY-01 query regex', '/q?id=123', 'rx-query'),
        kase('RX-QUERY-02 query regex anchored', '/q?id=1234', 'prefix'),
        kase('RX-QUERY-03 query param among others', '/q?other=1&id=007', 'rx-query'),
        kase('RX-QUERY-04 query name case-sensitive', '/q?ID=123', 'prefix'),
        kase('RX-QUERY-05 no query', '/q', 'prefix'),
        kase('RX-MIXED-01 exact + regex header + regex query ANDed', '/mixed?k=abc', 'backend-v3', {
            headers: { 'X-Mode': 'exact', 'X-Ver': 'v2' },
        }),
        kase('RX-MIXED-02 one condition fails', '/mixed?k=ABC', 'catchall', { headers: { 'X-Mode': 'exact', 'X-Ver': 'v2' } }),
        kase('RX-MIXED-03 header regex fails', '/mixed?k=abc', 'catchall', { headers: { 'X-Mode': 'exact', 'X-Ver': 'v3' } }),
    ]);
    /* The pathological pattern must not stall the worker: a request right after answers at once. */
    const t0 = performance.now();
    const r = await httpRequest({ port: env.port, path: '/bt', headers: { Host: 'x', 'X-Evil': 'a'.repeat(200) + 'c' } });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).backend, 'catchall');
    assert.ok(performance.now() - t0 < 1000 * SLOW, `backtracking request took ${performance.now() - t0} ms`);
});

/* ---- Weighted backendRefs ---- */

const weightRoutes = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: weights}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs:
    - {name: backend-v1, port: 8080, weight: 70}
    - {name: backend-v2, port: 8080, weight: 30}
    - {name: backend-v3, port: 8080, weight: 0}
  - matches: [{path: {type: PathPrefix, value: /zero}}]
    backendRefs:
    - {name: backend-v1, port: 8080, weight: 0}
    - {name: backend-v2, port: 8080, weight: 5}
  - matches: [{path: {type: PathPrefix, value: /all-zero}}]
    backendRefs:
    - {name: backend-v1, port: 8080, weight: 0}
    - {name: backend-v2, port: 8080, weight: 0}
  - matches: [{path: {type: PathPrefix, value: /unresolvable}}]
    backendRefs:
    - {name: does-not-exist, port: 8080}
`;

test('weighted backendRefs: shares follow weights, weight 0 never chosen', async t => {
    const env = await gatewayWith(weightRoutes);
    await runAll(t, env, [
        kase('WEIGHT-01 70/30/0 over 500 requests, 10 concurrent', '/split', {
            distribution: { 'backend-v1': 70, 'backend-v2': 30, 'backend-v3': 0 },
        }),
        kase('WEIGHT-02 weight 0 next to a weighted backend: never chosen', '/zero', {
            repeat: 100,
            each: { status: 200, backend: 'backend-v2' },
        }),
        /* Gateway API: a rule whose backends all have weight 0 answers 500, like one with no backends. */
        kase('WEIGHT-03 all weights 0: 500', '/all-zero', { status: 500 }),
        kase('WEIGHT-04 unresolvable backend: 500', '/unresolvable', { status: 500 }),
    ]);
});

/* ---- Timeouts: rule timeouts win over RoutePolicy routeTimeout; 0s disables ---- */

const timeoutRoutes = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: policy-only}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /policy-only}}]
    backendRefs: [{name: backend-v1, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: rule-wins}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /rule-longer}}]
    backendRefs: [{name: backend-v1, port: 8080}]
    timeouts: {request: 3s}
  - matches: [{path: {type: PathPrefix, value: /rule-zero}}]
    backendRefs: [{name: backend-v1, port: 8080}]
    timeouts: {request: 0s}
  - matches: [{path: {type: PathPrefix, value: /rule-backend}}]
    backendRefs: [{name: backend-v1, port: 8080}]
    timeouts: {backendRequest: 3s}
  - matches: [{path: {type: PathPrefix, value: /policy}}]
    backendRefs: [{name: backend-v1, port: 8080}]
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p-only}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: policy-only}
  default: {timeouts: {routeTimeout: 300ms}}
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p-rule-wins}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: rule-wins}
  default: {timeouts: {routeTimeout: 300ms}}
`;

test('timeout precedence: rule timeouts beat RoutePolicy routeTimeout, which answers 504', async t => {
    const env = await gatewayWith(timeoutRoutes);
    await runAll(t, env, [
        kase('TO-01 RoutePolicy routeTimeout 300ms fires: 504', '/policy-only?delay=1s', { status: 504 }),
        kase('TO-02 under the RoutePolicy timeout', '/policy-only', 'backend-v1'),
        kase('TO-03 rule timeouts.request 3s beats the policy 300ms', '/rule-longer?delay=800ms', 'backend-v1'),
        kase('TO-04 rule timeouts.request 0s disables, beating the policy', '/rule-zero?delay=800ms', 'backend-v1'),
        kase('TO-05 rule timeouts.backendRequest 3s beats the policy', '/rule-backend?delay=800ms', 'backend-v1'),
        kase('TO-06 rule without timeouts takes the policy', '/policy?delay=1s', { status: 504 }),
    ]);
    /* The 504 comes when the policy says, not at some later default. */
    const t0 = performance.now();
    const r = await httpRequest({ port: env.port, path: '/policy-only?delay=3s', headers: { Host: 'x' } });
    const ms = performance.now() - t0;
    assert.equal(r.status, 504);
    assert.ok(ms >= 250 && ms < 1500 * SLOW, `504 after ${ms.toFixed(0)} ms, want ~300 ms`);
});

/* ---- Config errors through --check: FILE:LINE:COL: message, one per line, all of them ---- */

const badConfig = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  listeners:
  - {name: http, protocol: HTTP, port: 18080}
  - {name: dup-listener, protocol: HTTP, port: 18080}
  - {name: http, protocol: HTTP, port: 18081, hostname: dup.name.example}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r1}
spec:
  parentRefs: [{name: missing-gateway}]
  rules:
  - backendRefs: [{name: 127.0.0.1, port: 9}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r2}
spec:
  parentRefs: [{name: gw, sectionName: missing-listener}]
  rules:
  - matches:
    - path: {type: RegularExpression, value: "/(unclosed"}
      headers: [{name: X-A, type: RegularExpression, value: "[z-a]"}]
      queryParams: [{name: q, type: RegularExpression, value: "a{2,1}"}]
    backendRefs: [{name: 127.0.0.1, port: 9}]
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p1}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r2}
  default: {timeouts: {routeTimeout: 1s}}
---
apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: p2}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: r2}
  default: {timeouts: {routeTimeout: 2s}}
`;

/* Each expected problem: the text on its line that the column must point at or before, and words of the message. */
const expectedProblems = [
    { what: 'duplicate listener (same port and hostname)', marker: 'dup-listener', words: [/same port/, /dup-listener/] },
    { what: 'duplicate listener name', marker: 'dup.name.example', words: [/duplicate listener name/, /"http"/] },
    { what: 'route pointing at a missing Gateway', marker: 'missing-gateway', words: [/missing-gateway/, /does not exist|no gateway|not found/i] },
    { what: 'route pointing at a missing listener', marker: 'missing-listener', words: [/missing-listener/, /listener/] },
    { what: 'invalid path regex', marker: '/(unclosed', words: [/regular expression/, /offset \d+/, /parenthes/] },
    { what: 'invalid header regex', marker: '[z-a]', words: [/regular expression/, /offset \d+/, /range/] },
    { what: 'invalid query regex', marker: 'a{2,1}', words: [/regular expression/, /offset \d+/] },
    { what: 'conflicting RoutePolicy', marker: 'routeTimeout: 2s', words: [/p2/, /conflict/, /p1/] },
];

test('--check reports every config error as FILE:LINE:COL: message, one per line', async t => {
    const file = writeTemp('bad-routing.yaml', badConfig);
    const lines = badConfig.split('\n');
    const r = await runGateway(['--check', '-c', file]);
    assert.equal(r.code, 1, `exit ${r.code}\n${r.stderr}`);
    const out = (r.stderr + r.stdout).split('\n').filter(l => l.trim());
    const esc = file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const re = new RegExp(`^${esc}:(\\d+):(\\d+): (.+)$`);
    const problems = out.map(l => {
        const m = re.exec(l);
        assert.ok(m, `not a FILE:LINE:COL: message line: ${JSON.stringify(l)}\n${r.stderr}`);
        return { line: Number(m[1]), col: Number(m[2]), msg: m[3], raw: l };
    });
    for (const p of expectedProblems) {
        await t.test(p.what, () => {
            const line = lines.findIndex(l => l.includes(p.marker)) + 1;
            const hits = problems.filter(q => q.line === line && p.words.every(w => w.test(q.msg)));
            assert.equal(hits.length, 1, `want one problem at line ${line} matching ${p.words.join(' ')}; got:\n${out.join('\n')}`);
            const { col } = hits[0];
            const text = lines[line - 1];
            assert.ok(col >= 1 && col <= text.length, `column ${col} outside line ${line}: ${text}`);
            assert.ok(text.slice(col - 1).includes(p.marker.split(' ').pop()), `column ${col} is past ${p.marker} on line ${line}: ${text}`);
        });
    }
    assert.equal(problems.length, expectedProblems.length, `unexpected extra problems:\n${out.join('\n')}`);
    /* Without --check the same config refuses to start, with the same lines. */
    const boot = await runGateway(['-c', file]);
    assert.equal(boot.code, 1, boot.stderr);
    for (const p of problems) assert.ok(boot.stderr.includes(p.raw), `boot output lacks: ${p.raw}\n${boot.stderr}`);
});

test('--check accepts the regex, weight and timeout configs of this file', async () => {
    for (const routes of [regexRoutes, weightRoutes, timeoutRoutes]) {
        const f = writeTemp('good-routing.yaml', [gatewayDoc(18080), routes, backendYaml(backends.ports)].join('---\n'));
        const r = await runGateway(['--check', '-c', f]);
        assert.equal(r.code, 0, r.stderr);
        assert.ok(!/^[^\n]*:\d+:\d+: (?!warning)/m.test(r.stderr), r.stderr);
    }
});
