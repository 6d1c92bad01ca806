// cors.test.mjs: the HTTPRoute CORS filter through the real binary: preflights answered by the gateway (allowed, refused
// by origin, method or header; maxAge), never seen by the backend; actual responses carry Access-Control-Allow-Origin
// (the request's origin), -Credentials, -Expose-Headers and Vary, over HTTP/1.1 and HTTP/2, on SSE heads too; a
// route without the filter passes everything through untouched.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { h2Request, httpRequest } from './lib/echo-backends.mjs';
import { freePort, setup, startGateway, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();
let gw, echo, sse, port, admin;
const logs = () => [gw];

const GW = 'gateway.networking.k8s.io/v1';
const route = (name, rules) => `apiVersion: ${GW}
kind: HTTPRoute
metadata: {name: ${name}}
spec:
  parentRefs: [{name: gw}]
  rules:
${rules}`;

before(async () => {
    echo = await echoBackend();
    sse = await sseBackend({
        onStream: st => {
            st.send('one');
        },
    });
    port = await freePort();
    admin = await freePort();
    const yaml = [
        `apiVersion: ${GW}
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, protocol: HTTP, port: ${port}}
`,
        route('cors', `  - matches: [{path: {type: PathPrefix, value: /api}, method: GET}, {path: {type: PathPrefix, value: /api}, method: PUT}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ["https://app.example", "https://*.tenant.example", "http://127.0.0.2:8080"]
        allowCredentials: true
        allowMethods: [GET, PUT]
        allowHeaders: [x-token, content-type]
        exposeHeaders: [x-seq, x-request-id]
        maxAge: 600
    backendRefs: [{name: 127.0.0.1, port: ${echo.port}}]
  - matches: [{path: {type: PathPrefix, value: /events}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["https://app.example"], allowCredentials: true}
    backendRefs: [{name: 127.0.0.1, port: ${sse.port}}]
  - matches: [{path: {type: PathPrefix, value: /open}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["*"], allowMethods: ["*"], allowHeaders: ["*"]}
    backendRefs: [{name: 127.0.0.1, port: ${echo.port}}]
  - matches: [{path: {type: PathPrefix, value: /nobackend}}]
    filters:
    - type: CORS
      cors: {allowOrigins: ["https://app.example"]}
`),
        route('plain', `  - matches: [{path: {type: PathPrefix, value: /plain}}]
    backendRefs: [{name: 127.0.0.1, port: ${echo.port}}]
`),
    ].join('---\n');
    gw = await startGateway({ yaml, args: ['--access-log', 'off', '--admin', `127.0.0.1:${admin}`], waitPorts: [port, admin] });
});

after(async () => {
    if (gw) await gw.stop();
});

const one = (res, name) => {
    const v = res.headers[name];
    if (v === undefined) return undefined;
    assert.equal(v.length, 1, `${name} appears ${v.length} times: ${JSON.stringify(v)}`);
    return v[0];
};
const corsNames = res => Object.keys(res.headers).filter(k => k.startsWith('access-control-')).sort();
const preflight = (path, origin, method, headers, proto = 'h1') =>
    (proto === 'h2' ? h2Request : httpRequest)({
        port,
        method: 'OPTIONS',
        path,
        headers: {
            Host: 'x',
            Origin: origin,
            'Access-Control-Request-Method': method,
            ...(headers ? { 'Access-Control-Request-Headers': headers } : {}),
        },
    });

for (const proto of ['h1', 'h2']) {
    test(`${proto}: an allowed preflight is answered by the gateway with every Access-Control-Allow-* header`, withLogs(logs, async () => {
        const before = echo.requests.length;
        const r = await preflight('/api/items', 'https://a.b.tenant.example', 'PUT', 'X-Token, content-type', proto);
        assert.equal(r.status, 204);
        assert.equal(one(r, 'access-control-allow-origin'), 'https://a.b.tenant.example');
        assert.equal(one(r, 'access-control-allow-credentials'), 'true');
        assert.equal(one(r, 'access-control-allow-methods'), 'GET, PUT');
        assert.equal(one(r, 'access-control-allow-headers'), 'x-token, content-type');
        assert.equal(one(r, 'access-control-max-age'), '600');
        assert.match(one(r, 'vary'), /\bOrigin\b/);
        assert.equal(r.body, '');
        assert.equal(echo.requests.length, before, 'the backend saw the preflight');
    }));

    test(`${proto}: a refused preflight gets 204 and no CORS header (origin, method, header), never reaching the backend`, withLogs(logs, async () => {
        const before = echo.requests.length;
        const refused = [
            ['https://evil.example', 'GET', undefined],
            ['https://tenant.example', 'GET', undefined], // "*.tenant.example" needs a label in front
            ['http://app.example', 'GET', undefined], // scheme
            ['https://app.example:8443', 'GET', undefined], // port
            ['null', 'GET', undefined], // an opaque origin
            ['https://app.example', 'PUT', 'x-token, x-other'], // a header not allowed
        ];
        for (const [origin, method, headers] of refused) {
            const r = await preflight('/api/items', origin, method, headers, proto);
            assert.equal(r.status, 204, origin);
            assert.deepEqual(corsNames(r), [], `${origin} ${method} ${headers}: ${JSON.stringify(r.headers)}`);
        }
        assert.equal(echo.requests.length, before, 'the backend saw a preflight');
    }));
}

test('a method the filter does not allow is refused even though the rule routes it', withLogs(logs, async () => {
    /* /open allows every method; /api lists GET and PUT. DELETE on /api matches no rule as DELETE or OPTIONS:
     * the preflight is then an ordinary OPTIONS request, which no rule takes (404, no CORS headers). */
    const r = await preflight('/api/items', 'https://app.example', 'DELETE');
    assert.equal(r.status, 404);
    assert.deepEqual(corsNames(r), []);
    /* PATCH is not listed on the rule that matches every method. */
    const m = await scrape(admin);
    const refusedBefore = m.get('ssegate_cors_preflights_total', { result: 'refused' });
    const p = await httpRequest({
        port, method: 'OPTIONS', path: '/events', headers: { Host: 'x', Origin: 'https://app.example', 'Access-Control-Request-Method': 'PATCH' },
    });
    assert.equal(p.status, 204);
    assert.deepEqual(corsNames(p), []);
    const m2 = await scrape(admin);
    assert.equal(m2.get('ssegate_cors_preflights_total', { result: 'refused' }), refusedBefore + 1);
}));

test('a preflight for a GET-only rule is routed as the GET it asks about', withLogs(logs, async () => {
    /* The first /api match is method: GET; an OPTIONS request matches it only through Access-Control-Request-Method. */
    const r = await preflight('/api/x', 'https://app.example', 'GET');
    assert.equal(r.status, 204);
    assert.equal(one(r, 'access-control-allow-origin'), 'https://app.example');
}));

test('"*" lists answer with what was asked (the request\'s own origin, method and headers)', withLogs(logs, async () => {
    const r = await preflight('/open/x', 'http://127.0.0.9:3000', 'PATCH', 'authorization, x-anything');
    assert.equal(r.status, 204);
    assert.equal(one(r, 'access-control-allow-origin'), 'http://127.0.0.9:3000');
    assert.equal(one(r, 'access-control-allow-methods'), 'PATCH');
    assert.equal(one(r, 'access-control-allow-headers'), 'authorization, x-anything');
    assert.equal(one(r, 'access-control-allow-credentials'), undefined);
    assert.equal(one(r, 'access-control-max-age'), '5', 'maxAge defaults to 5');
}));

for (const proto of ['h1', 'h2']) {
    test(`${proto}: an actual request gets its own origin back, credentials, exposed headers and Vary: Origin`, withLogs(logs, async () => {
        const req = proto === 'h2' ? h2Request : httpRequest;
        const r = await req({
            port, path: '/api/v1', headers: { Host: 'x', Origin: 'https://app.example' },
        });
        assert.equal(r.status, 200);
        assert.equal(one(r, 'access-control-allow-origin'), 'https://app.example');
        assert.equal(one(r, 'access-control-allow-credentials'), 'true');
        assert.equal(one(r, 'access-control-expose-headers'), 'x-seq, x-request-id');
        assert.ok((r.headers.vary || []).some(v => /\bOrigin\b/.test(v)), JSON.stringify(r.headers));
        assert.equal(JSON.parse(r.body).headers.origin, 'https://app.example', 'the Origin reaches the backend unchanged');
        /* Another origin: the response is served (CORS is for browsers), without any CORS header but Vary. */
        const o = await req({ port, path: '/api/v1', headers: { Host: 'x', Origin: 'https://evil.example' } });
        assert.equal(o.status, 200);
        assert.deepEqual(corsNames(o), []);
        assert.ok((o.headers.vary || []).some(v => /\bOrigin\b/.test(v)));
    }));
}

test('a backend\'s own Access-Control-* headers are replaced by the route\'s policy', withLogs(logs, async () => {
    /* The echo backend adds what X-Echo-Set-Header asks for: here, what a permissive backend would send. */
    const w = await httpRequest({
        port, path: '/api/own', headers: {
            Host: 'x', Origin: 'https://evil.example',
            'X-Echo-Set-Header': 'Access-Control-Allow-Origin:*,Access-Control-Allow-Credentials:true,Access-Control-Max-Age:99,X-Seq:7',
        },
    });
    assert.equal(w.status, 200);
    assert.deepEqual(corsNames(w), [], `the backend's permissive headers leaked: ${JSON.stringify(w.headers)}`);
    assert.equal(one(w, 'x-seq'), '7');
    /* Without the filter the same backend headers pass through untouched. */
    const p = await httpRequest({
        port, path: '/plain/own', headers: { Host: 'x', Origin: 'https://evil.example', 'X-Echo-Set-Header': 'Access-Control-Allow-Origin:*' },
    });
    assert.equal(one(p, 'access-control-allow-origin'), '*');
}));

test('a route without the filter passes a preflight to the backend and adds nothing', withLogs(logs, async () => {
    const before = echo.requests.length;
    const r = await preflight('/plain/x', 'https://app.example', 'PUT', 'x-token');
    assert.equal(r.status, 200);
    assert.equal(echo.requests.length, before + 1);
    assert.equal(echo.requests.at(-1).method, 'OPTIONS');
    assert.deepEqual(corsNames(r), []);
    assert.equal(r.headers.vary, undefined);
}));

for (const proto of ['h1', 'h2']) {
    test(`${proto}: an SSE response head carries the CORS headers`, withLogs(logs, async () => {
        const r = await new Promise((resolve, reject) => {
            const done = (status, headers, data) => resolve({ status, headers, data });
            if (proto === 'h1') {
                const req = http.request({ host: '127.0.0.1', port, path: '/events/a', agent: false, headers: { Origin: 'https://app.example', Accept: 'text/event-stream' } }, res => {
                    let data = '';
                    res.setEncoding('utf8');
                    res.on('data', d => {
                        data += d;
                        if (data.includes('\n\n')) {
                            req.destroy();
                            done(res.statusCode, res.headers, data);
                        }
                    });
                });
                req.on('error', e => (e.code === 'ECONNRESET' ? null : reject(e)));
                req.end();
            } else {
                {
                    const s = http2.connect(`http://127.0.0.1:${port}`);
                    s.on('error', reject);
                    const st = s.request({ ':path': '/events/b', origin: 'https://app.example', accept: 'text/event-stream' });
                    let head;
                    let data = '';
                    st.on('response', h => (head = h));
                    st.setEncoding('utf8');
                    st.on('data', d => {
                        data += d;
                        if (data.includes('\n\n')) {
                            st.close();
                            s.close();
                            done(Number(head[':status']), head, data);
                        }
                    });
                    st.on('error', reject);
                }
            }
        });
        assert.equal(r.status, 200);
        assert.match(r.headers['content-type'], /text\/event-stream/);
        assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
        assert.equal(r.headers['access-control-allow-credentials'], 'true');
        assert.match(r.data, /data: one/);
    }));
}

test('the gateway\'s own answers on a CORS route carry the policy too (500: no backend)', withLogs(logs, async () => {
    const r = await httpRequest({ port, path: '/nobackend', headers: { Host: 'x', Origin: 'https://app.example' } });
    assert.equal(r.status, 500);
    assert.equal(one(r, 'access-control-allow-origin'), 'https://app.example');
}));

test('preflights are counted by result', withLogs(logs, async () => {
    const m0 = await scrape(admin);
    await preflight('/api/x', 'https://app.example', 'GET');
    await preflight('/api/x', 'https://evil.example', 'GET');
    await preflight('/api/x', 'https://evil.example', 'GET');
    const m1 = await scrape(admin);
    const d = r => m1.get('ssegate_cors_preflights_total', { result: r }) - m0.get('ssegate_cors_preflights_total', { result: r });
    assert.equal(d('allowed'), 1);
    assert.equal(d('refused'), 2);
}));
