// tls-browser.test.mjs: headless Chromium on a page served through ssegate over TLS. Over HTTP/2, 50 EventSource
// streams to one origin all open and receive events on one connection; on a listener whose ALPN offers only
// http/1.1, Chromium's six-connections-per-host limit holds the rest back.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { makeCert, secretYaml, tlsGatewayYaml } from '../h2probe/tlsconf.mjs';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';

setup();
const CHROMIUM = process.env.SG_CHROMIUM || '/usr/lib/chromium/chromium';
const N = 50;
let gw, echo, sse, h2port, h1port, browser;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ssegate: many EventSources</title>
<script>
window.__opens = 0;
window.__got = new Set();
window.__es = [];
for (let i = 0; i < ${N}; i++) {
    const es = new EventSource('/events/browser?i=' + i);
    es.onopen = () => window.__opens++;
    es.onmessage = e => window.__got.add(i);
    window.__es.push(es);
}
window.__closeAll = () => window.__es.forEach(es => es.close());
</script>
`;

before(async () => {
    echo = await echoBackend();
    echo.pages.set('/page/index.html', { body: PAGE });
    /* Every stream gets an event at once and one per 200 ms after that, until it closes. */
    sse = await sseBackend({
        onStream: st => {
            st.send('hello');
            const t = setInterval(() => {
                if (!st.send('tick')) clearInterval(t);
            }, 200);
        },
    });
    h2port = await freePort();
    h1port = await freePort();
    const cert = makeCert('a.test');
    gw = await startGateway({
        yaml: tlsGatewayYaml({
            listeners: [
                { name: 'h2', port: h2port, certs: ['cert'] },
                { name: 'h1', port: h1port, certs: ['cert'], alpn: 'http/1.1' },
            ],
            routes: [
                { name: 'page', path: '/page', port: echo.port },
                { name: 'events', path: '/events', port: sse.port },
            ],
            extra: [secretYaml('cert', cert)],
        }),
        args: ['--access-log', 'off'],
        waitPorts: [h2port, h1port],
    });
});

after(async () => {
    if (browser) await browser.close();
});

async function openPage(port) {
    if (!browser) {
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
                '--host-resolver-rules=MAP a.test 127.0.0.1'],
        });
    }
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await ctx.newPage();
    const protos = new Set();
    page.on('response', async r => {
        try {
            const sec = await r.securityDetails();
            if (sec) protos.add(sec.protocol());
        } catch {
            /* the page may be gone */
        }
    });
    await page.goto(`https://a.test:${port}/page/index.html`);
    return { ctx, page, protos };
}

const skip = fs.existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`;

test(`Chromium over HTTP/2 + TLS: ${N} EventSource streams to one origin all receive events`,
    { skip, timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const before = sse.streams.length;
        const { ctx, page } = await openPage(h2port);
        const deadline = Date.now() + 15000 * SLOW;
        let state;
        for (;;) {
            state = await page.evaluate(() => ({ opens: window.__opens, got: window.__got.size }));
            if (state.got === N || Date.now() > deadline) break;
            await sleep(100);
        }
        assert.equal(state.opens, N, `${state.opens} of ${N} EventSources open`);
        assert.equal(state.got, N, `${state.got} of ${N} EventSources got events`);
        assert.equal(sse.streams.length - before, N);
        /* All of them on one HTTP/2 connection: the gateway saw one TLS client connection for the page. */
        const h2 = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
        assert.equal(h2, 'h2');
        await page.evaluate(() => window.__closeAll());
        await ctx.close();
    }));

test('Chromium over HTTP/1.1 + TLS (ALPN without h2): only 6 EventSources connect, the rest wait',
    { skip, timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const before = sse.streams.length;
        const { ctx, page } = await openPage(h1port);
        await sleep(3000 * SLOW);
        const state = await page.evaluate(() => ({ opens: window.__opens, got: window.__got.size }));
        const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
        assert.equal(proto, 'http/1.1');
        assert.equal(state.opens, 6, `${state.opens} EventSources open`);
        assert.equal(state.got, 6);
        assert.equal(sse.streams.length - before, 6, 'the backend saw six streams');
        await page.evaluate(() => window.__closeAll());
        await ctx.close();
    }));
