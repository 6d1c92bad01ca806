// cors-browser.test.mjs: headless Chromium, page on http://127.0.0.1:PORT, streams on http://127.0.0.2:PORT, all through
// the gateway: a cross-origin EventSource with withCredentials works through a route with a CORS filter that allows
// the page's origin with credentials (events arrive, and the reconnect with Last-Event-ID too), and is refused by the
// browser (an error, no event) through a route without the filter and through one whose filter allows no credentials.
// A credentialed fetch() that needs a preflight gets it answered by the gateway (allowed: the request follows and
// reads an exposed header; refused: the browser never sends the request).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();
const CHROMIUM = process.env.SG_CHROMIUM || '/usr/lib/chromium/chromium';
const PER_CONN = 2;
let gw, echo, sse, port, admin, browser, page;
const logs = () => [gw];

/* window.__run(url) opens a credentialed EventSource and records its opens, events and errors; close() ends it. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ssegate CORS test</title>
<script>
window.__runs = {};
window.__run = (name, url) => {
    const r = { opens: 0, errors: 0, events: [], states: [] };
    window.__runs[name] = r;
    const es = new EventSource(url, { withCredentials: true });
    r.withCredentials = es.withCredentials;
    es.onopen = () => r.opens++;
    es.onerror = () => { r.errors++; r.states.push(es.readyState); };
    es.onmessage = e => r.events.push({ id: e.lastEventId, data: e.data });
    r.close = () => es.close();
    window['__es_' + name] = es;
};
window.__close = name => window['__es_' + name].close();
window.__fetch = async (url, init) => {
    try {
        const r = await fetch(url, init);
        return { ok: true, status: r.status, seq: r.headers.get('x-seq'), body: await r.text() };
    } catch (e) {
        return { ok: false, err: String(e) };
    }
};
</script>
`;

const GW = 'gateway.networking.k8s.io/v1';

before(async () => {
    echo = await echoBackend();
    echo.pages.set('/page/index.html', { body: PAGE });
    sse = await sseBackend({
        retry: 200,
        onStream: async st => {
            /* The browser drops a refused stream at once: never write after it is gone. */
            for (let i = 0; i < PER_CONN; i++) {
                await sleep(50);
                if (st.closed) return;
                st.send(`cors ${st.nextId}`);
            }
            await sleep(50);
            if (!st.closed) st.end();
        },
    });
    port = await freePort();
    admin = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const stream = (path, filter) => `  - matches: [{path: {type: PathPrefix, value: ${path}}}]
${filter ? `    filters: [${filter}]\n` : ''}    backendRefs: [{name: 127.0.0.1, port: ${sse.port}}]
`;
    const yaml = `apiVersion: ${GW}
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
  addresses: [{type: IPAddress, value: 127.0.0.1}, {type: IPAddress, value: 127.0.0.2}]
  listeners:
  - {name: http, protocol: HTTP, port: ${port}}
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: {name: page}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /page}}]
    backendRefs: [{name: 127.0.0.1, port: ${echo.port}}]
---
apiVersion: ${GW}
kind: HTTPRoute
metadata: {name: streams}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters: [{type: CORS, cors: {allowOrigins: ["${origin}"], allowCredentials: true, allowMethods: [PUT], allowHeaders: [x-token, x-echo-set-header], exposeHeaders: [x-seq]}}]
    backendRefs: [{name: 127.0.0.1, port: ${echo.port}}]
${stream('/cors', `{type: CORS, cors: {allowOrigins: ["${origin}"], allowCredentials: true}}`)}${stream('/plain')}${stream('/nocreds', `{type: CORS, cors: {allowOrigins: ["${origin}"]}}`)}`;
    gw = await startGateway({ yaml, args: ['--access-log', 'off', '--admin', `127.0.0.1:${admin}`], waitPorts: [port, admin] });
});

after(async () => {
    if (browser) await browser.close();
});

const skip = fs.existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`;

async function openPage() {
    if (page) return page;
    browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    const ctx = await browser.newContext(); /* a fresh profile: no cached preflight, no cookies */
    page = await ctx.newPage();
    const resp = await page.goto(`http://127.0.0.1:${port}/page/index.html`);
    assert.equal(resp.status(), 200);
    return page;
}

/* Runs an EventSource on the cross origin until `until(run)` holds or the deadline passes; returns the run. */
async function runStream(name, path, until, ms) {
    const p = await openPage();
    await p.evaluate(([n, u]) => window.__run(n, u), [name, `http://127.0.0.2:${port}${path}`]);
    const deadline = Date.now() + ms;
    let r;
    for (;;) {
        r = await p.evaluate(n => {
            const x = window.__runs[n];
            return { opens: x.opens, errors: x.errors, events: x.events, states: x.states, withCredentials: x.withCredentials };
        }, name);
        if (until(r) || Date.now() > deadline) break;
        await sleep(100);
    }
    await p.evaluate(n => window.__close(n), name);
    return r;
}

test(
    'Chromium: a cross-origin credentialed EventSource works through a route with the CORS filter, reconnect included',
    { skip, timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const before = sse.streams.length;
        const want = PER_CONN * 2; /* two connections: the second resumes with Last-Event-ID */
        const r = await runStream('cors', '/cors/s', x => x.events.length >= want, 20000 * SLOW);
        assert.equal(r.withCredentials, true);
        assert.deepEqual(r.events.slice(0, want).map(e => e.id), Array.from({ length: want }, (_, i) => String(i + 1)),
            JSON.stringify(r));
        for (const e of r.events) assert.equal(e.data, `cors ${e.id}`);
        assert.ok(r.opens >= 2, `opens: ${r.opens}`);
        const mine = sse.streams.slice(before);
        assert.equal(mine[0].headers.origin, `http://127.0.0.1:${port}`, 'the browser did not send a cross-origin request');
        assert.equal(mine[1].lastEventId, String(PER_CONN));
    }),
);

for (const [name, path, why] of [
    ['plain', '/plain/s', 'a route without the CORS filter'],
    ['nocreds', '/nocreds/s', 'a CORS filter that allows the origin but not credentials'],
]) {
    test(
        `Chromium: the same EventSource is refused through ${why}: an error, no event`,
        { skip, timeout: 60000 * SLOW },
        withLogs(logs, async () => {
            const before = sse.streams.length;
            const r = await runStream(name, path, x => x.errors >= 1 && x.states.includes(2), 10000 * SLOW);
            assert.equal(r.opens, 0, JSON.stringify(r));
            assert.deepEqual(r.events, []);
            assert.ok(r.errors >= 1, 'no error event');
            /* readyState CLOSED (2): the browser gave up, it does not retry a CORS failure. */
            assert.ok(r.states.includes(2), `readyState after the error: ${JSON.stringify(r.states)}`);
            /* The request did reach the backend through the gateway: the browser, not the network, refused it. */
            assert.ok(sse.streams.slice(before).some(s => s.url === path), 'the request never reached the backend');
        }),
    );
}

test(
    'Chromium: a credentialed PUT with a custom header is preflighted by the gateway; a header not allowed stops it there',
    { skip, timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const p = await openPage();
        const url = `http://127.0.0.2:${port}/api/item`;
        const count = async () => {
            const m = await scrape(admin);
            return [m.get('ssegate_cors_preflights_total', { result: 'allowed' }), m.get('ssegate_cors_preflights_total', { result: 'refused' })];
        };
        const [a0, r0] = await count();
        const n0 = echo.requests.length;
        const ok = await p.evaluate(([u]) => window.__fetch(u, {
            method: 'PUT', credentials: 'include', headers: { 'x-token': 't1', 'x-echo-set-header': 'X-Seq:42' }, body: 'hi',
        }), [url]);
        assert.equal(ok.ok, true, JSON.stringify(ok));
        assert.equal(ok.status, 200);
        assert.equal(ok.seq, '42', 'the exposed header is not readable');
        const sent = echo.requests.slice(n0);
        assert.deepEqual(sent.map(r => r.method), ['PUT'], 'the backend saw a preflight, or not the request');
        assert.equal(sent[0].headers['x-token'], 't1');
        const [a1, r1] = await count();
        assert.equal(a1 - a0, 1, 'the browser\'s preflight was not answered by the gateway');
        assert.equal(r1 - r0, 0);

        const no = await p.evaluate(([u]) => window.__fetch(u, {
            method: 'PUT', credentials: 'include', headers: { 'x-other': 'v' }, body: 'hi',
        }), [url]);
        assert.equal(no.ok, false, JSON.stringify(no));
        assert.equal(echo.requests.length, n0 + 1, 'the refused request reached the backend');
        const [a2, r2] = await count();
        assert.equal(a2 - a1, 0);
        assert.equal(r2 - r1, 1);
    }),
);
