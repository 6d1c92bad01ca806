// browser.test.mjs: headless Chromium's EventSource through the gateway: events, then reconnect with Last-Event-ID.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';

setup();
const CHROMIUM = process.env.SG_CHROMIUM || '/usr/lib/chromium/chromium';
const PER_CONN = 3;
let gw, echo, sse, port, browser;
const logs = () => [gw];

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ssegate browser test</title>
<script>
window.__events = [];
window.__opens = 0;
window.__errors = 0;
const es = new EventSource('/stream/browser');
es.onopen = () => window.__opens++;
es.onerror = () => window.__errors++;
es.onmessage = e => window.__events.push({ id: e.lastEventId, data: e.data, t: performance.now() });
window.__close = () => es.close();
</script>
`;

before(async () => {
    echo = await echoBackend();
    echo.pages.set('/page/index.html', { body: PAGE });
    sse = await sseBackend({
        retry: 200,
        onStream: async st => {
            for (let i = 0; i < PER_CONN && !st.closed; i++) {
                await sleep(50);
                st.send(`browser ${st.nextId}`);
            }
            await sleep(50);
            st.end();
        },
    });
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'page', path: '/page', backends: [{ name: '127.0.0.1', port: echo.port }] },
                { name: 'stream', path: '/stream', backends: [{ name: '127.0.0.1', port: sse.port }] },
            ],
        }),
        args: ['--access-log', 'off'],
        waitPorts: [port],
    });
});

after(async () => {
    if (browser) await browser.close();
});

test(
    'Chromium EventSource through ssegate: events arrive, reconnects with Last-Event-ID after the backend closes, continues',
    { skip: fs.existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`, timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        browser = await chromium.launch({
            executablePath: CHROMIUM,
            headless: true,
            args: [
                '--headless',
                '--no-sandbox',
                '--disable-gpu',
                '--disable-dev-shm-usage',
                '--disable-background-networking',
                '--disable-component-update',
                '--disable-sync',
                '--no-first-run',
            ],
        });
        const page = await browser.newPage();
        const resp = await page.goto(`http://127.0.0.1:${port}/page/index.html`);
        assert.equal(resp.status(), 200);
        const pageReq = echo.requests.find(r => r.url === '/page/index.html');
        assert.ok(pageReq, 'the page did not come from the backend');
        assert.equal(pageReq.headers['x-forwarded-for'], '127.0.0.1', 'the page was not served through the gateway');

        const want = PER_CONN * 3;
        const deadline = Date.now() + 20000 * SLOW;
        let events = [];
        while (Date.now() < deadline) {
            events = await page.evaluate(() => window.__events);
            if (events.length >= want) break;
            await sleep(100);
        }
        await page.evaluate(() => window.__close());
        const ids = events.map(e => Number(e.id));
        assert.deepEqual(ids.slice(0, want), Array.from({ length: want }, (_, i) => i + 1), `events: ${JSON.stringify(events)}`);
        for (const e of events) assert.equal(e.data, `browser ${e.id}`);
        assert.ok(sse.streams.length >= 3, `backend saw ${sse.streams.length} stream requests`);
        assert.equal(sse.streams[0].lastEventId, undefined);
        assert.equal(sse.streams[1].lastEventId, String(PER_CONN));
        assert.equal(sse.streams[2].lastEventId, String(PER_CONN * 2));
        assert.match(sse.streams[0].headers.accept || '', /text\/event-stream/);
        const opens = await page.evaluate(() => window.__opens);
        assert.ok(opens >= 3, `open events: ${opens}`);
    }),
);
