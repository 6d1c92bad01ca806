// websocket-browser.test.mjs: headless Chromium's own WebSocket through ssegate: over HTTP/1.1 (ws://), and over
// TLS where the listener offers h2 (wss://): Chromium then opens the WebSocket as an HTTP/2 extended CONNECT
// (RFC 8441), which ssegate advertises with SETTINGS_ENABLE_CONNECT_PROTOCOL and bridges to an HTTP/1.1 upgrade to
// the backend. The access log's proto field shows which one each WebSocket used.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { makeCert, secretYaml, tlsGatewayYaml } from '../h2probe/tlsconf.mjs';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { wsBackend } from './lib/wsutil.mjs';

setup();
const CHROMIUM = process.env.SG_CHROMIUM || '/usr/lib/chromium/chromium';
const skip = fs.existsSync(CHROMIUM) ? false : `no chromium at ${CHROMIUM}`;
let gw, b, h2port, h1port, plainPort, browser;

/* Echo of a text, a binary and a 2 MiB message; then the page closes with 4000 and records what came back. */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>ssegate: WebSocket</title>
<script>
window.__run = path => new Promise(resolve => {
    const r = { opened: false, texts: [], binLens: [], binOk: true, close: null, error: false };
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    const big = new Uint8Array(2 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 255;
    ws.onopen = () => {
        r.opened = true;
        ws.send('hello from chromium');
        ws.send(new Uint8Array([1, 2, 3]).buffer);
        ws.send(big.buffer);
    };
    ws.onmessage = e => {
        if (typeof e.data === 'string') r.texts.push(e.data);
        else {
            const a = new Uint8Array(e.data);
            r.binLens.push(a.length);
            if (a.length === big.length) for (let i = 0; i < a.length; i += 4099) if (a[i] !== big[i]) r.binOk = false;
        }
        if (r.texts.length + r.binLens.length === 3) ws.close(4000, 'page done');
    };
    ws.onerror = () => (r.error = true);
    ws.onclose = e => {
        r.close = { code: e.code, reason: e.reason, clean: e.wasClean };
        resolve(r);
    };
});
</script>
`;

before(async () => {
    b = await wsBackend();
    b.pages.set('/page/index.html', PAGE);
    h2port = await freePort();
    h1port = await freePort();
    plainPort = await freePort();
    const cert = makeCert('a.test');
    gw = await startGateway({
        yaml: tlsGatewayYaml({
            listeners: [
                { name: 'h2', port: h2port, certs: ['cert'] },
                { name: 'h1', port: h1port, certs: ['cert'], alpn: 'http/1.1' },
                { name: 'plain', port: plainPort, protocol: 'HTTP' },
            ],
            routes: [
                { name: 'page', path: '/page', port: b.port },
                { name: 'ws', path: '/ws', port: b.port },
            ],
            extra: [secretYaml('cert', cert)],
        }),
        args: ['--workers', '2'],
        waitPorts: [h2port, h1port, plainPort],
    });
});

after(async () => {
    if (browser) await browser.close();
});

async function run(origin, path) {
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
    await page.goto(`${origin}/page/index.html`);
    const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    const r = await Promise.race([page.evaluate(p => window.__run(p), path), sleep(20000 * SLOW).then(() => 'timeout')]);
    await ctx.close();
    return { r, proto };
}

function checkEcho(r) {
    assert.notEqual(r, 'timeout', 'the page WebSocket did not finish');
    assert.equal(r.opened, true);
    assert.equal(r.error, false);
    assert.deepEqual(r.texts, ['hello from chromium']);
    assert.deepEqual(r.binLens, [3, 2 * 1024 * 1024]);
    assert.equal(r.binOk, true, 'the 2 MiB message came back changed');
    assert.deepEqual(r.close, { code: 4000, reason: 'page done', clean: true });
}

async function logLine(re) {
    for (let i = 0; i < 100 && !re.test(gw.stdout); i++) await sleep(20);
    return re.test(gw.stdout);
}

test('Chromium WebSocket over HTTP/1.1 (ws://)', { skip, timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
    const { r } = await run(`http://a.test:${plainPort}`, '/ws/plain');
    checkEcho(r);
    assert.ok(await logLine(/proto=HTTP\/1\.1 method=GET path=\/ws\/plain status=101 /), 'no access log line of a 101 on HTTP/1.1');
    assert.equal(b.handshakes.at(-1).url, '/ws/plain');
}));

test('Chromium WebSocket over TLS with ALPN http/1.1 only (wss://, HTTP/1.1 upgrade)', { skip, timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const { r, proto } = await run(`https://a.test:${h1port}`, '/ws/tls-h1');
        assert.equal(proto, 'http/1.1');
        checkEcho(r);
        assert.ok(await logLine(/proto=HTTP\/1\.1 method=GET path=\/ws\/tls-h1 status=101 /));
    }));

test('Chromium WebSocket over TLS h2 (wss://): an RFC 8441 extended CONNECT on the page\'s HTTP/2 connection',
    { skip, timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const { r, proto } = await run(`https://a.test:${h2port}`, '/ws/over-h2');
        assert.equal(proto, 'h2');
        checkEcho(r);
        assert.ok(await logLine(/proto=HTTP\/2 method=CONNECT path=\/ws\/over-h2 status=200 /),
            `no access log line of an HTTP/2 extended CONNECT for the WebSocket:\n${gw.stdout.split('\n').filter(l => /over-h2/.test(l)).join('\n')}`);
        /* the backend saw an ordinary HTTP/1.1 upgrade with the gateway's key */
        const h = b.handshakes.at(-1);
        assert.equal(h.url, '/ws/over-h2');
        assert.equal(h.headers.upgrade, 'websocket');
        assert.match(h.headers['sec-websocket-key'], /^[A-Za-z0-9+/]{22}==$/);
        assert.equal(h.headers['sec-websocket-version'], '13');
    }));
