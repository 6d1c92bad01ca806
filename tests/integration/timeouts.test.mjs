// timeouts.test.mjs: route timeouts and SSE: defaults never cut a stream, explicit ones are honoured at event boundaries.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { request } from './lib/rawhttp.mjs';
import { openSse } from './lib/sseclient.mjs';

setup();
let gw, sse, echo, port;
const logs = () => [gw];

before(async () => {
    /* Every stream: one event every ~250 ms, each written in two halves 100 ms apart, so a cut at a random
     * moment would often land inside an event. */
    sse = await sseBackend({
        onStream: async st => {
            for (let n = 1; !st.closed && n < 200; n++) {
                st.sendRaw(`id: ${n}\ndata: event ${n} part-a `);
                await sleep(100);
                st.sendRaw(`part-b\n\n`);
                await sleep(150);
            }
        },
    });
    echo = await echoBackend();
    port = await freePort();
    const s = [{ name: '127.0.0.1', port: sse.port }];
    const e = [{ name: '127.0.0.1', port: echo.port }];
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'sse-default', path: '/sse/default', backends: s },
                { name: 'sse-zero', path: '/sse/zero', backends: s, policyTimeout: '0s' },
                { name: 'sse-zero-req', path: '/sse/zeroreq', backends: s, timeout: '0s' },
                { name: 'sse-cut', path: '/sse/cut', backends: s, policyTimeout: '2s' },
                { name: 'sse-cut-req', path: '/sse/cutreq', backends: s, timeout: '2s' },
                { name: 'slow-req', path: '/slow/req', backends: e, timeout: '1s' },
                { name: 'slow-ok', path: '/slow/ok', backends: e, timeout: '3s' },
            ],
        }),
        args: ['--access-log', 'off'],
        waitPorts: [port],
    });
});

function checkIds(h) {
    const ids = h.events.map(ev => Number(ev.id));
    assert.deepEqual(ids, Array.from({ length: ids.length }, (_, i) => i + 1), 'ids not contiguous');
    for (const ev of h.events) assert.equal(ev.data, `event ${ev.id} part-a part-b`);
}

describe('SSE streams and route timeouts', { concurrency: true }, () => {
    for (const [name, path] of [
        ['no timeout configured (defaults)', '/sse/default'],
        ['RoutePolicy routeTimeout: 0s', '/sse/zero'],
        ['HTTPRoute timeouts.request: 0s', '/sse/zeroreq'],
    ]) {
        test(
            `${name}: an SSE stream lives past 3.5 s`,
            withLogs(logs, async () => {
                const h = openSse(port, path);
                await h.head;
                assert.equal(h.status, 200);
                await sleep(3500);
                assert.equal(h.ended, false, `stream ended after ${(h.endedAt - h.headersAt).toFixed(0)} ms`);
                assert.ok(h.events.length >= 12, `only ${h.events.length} events in 3.5 s`);
                checkIds(h);
                h.close();
            }),
        );
    }

    for (const [name, path] of [
        ['RoutePolicy routeTimeout: 2s', '/sse/cut'],
        ['HTTPRoute timeouts.request: 2s', '/sse/cutreq'],
    ]) {
        test(
            `${name}: the SSE stream ends at ~2 s, at an event boundary`,
            withLogs(logs, async () => {
                const t0 = performance.now();
                const h = openSse(port, path);
                await h.head;
                assert.equal(h.status, 200);
                const r = await Promise.race([h.done, sleep(6000 * SLOW).then(() => null)]);
                assert.ok(r, 'stream not ended after 6 s');
                const dt = r.at - t0;
                assert.ok(dt >= 1900 && dt < 3000 * SLOW, `stream ended after ${dt.toFixed(0)} ms, want ~2000`);
                assert.ok(h.events.length >= 5, `only ${h.events.length} events`);
                checkIds(h);
                assert.ok(h.text.endsWith('\n\n'), `stream cut inside an event: ...${JSON.stringify(h.text.slice(-40))}`);
            }),
        );
    }

    test(
        'HTTPRoute timeouts.request: 1s on an ordinary slow response -> 504',
        withLogs(logs, async () => {
            const t0 = performance.now();
            const r = await request(port, { path: '/slow/req?delay=3000', ms: 8000 * SLOW });
            const dt = performance.now() - t0;
            assert.equal(r.status, 504);
            assert.ok(dt >= 900 && dt < 2500 * SLOW, `504 after ${dt.toFixed(0)} ms`);
        }),
    );

    test(
        'a response within the explicit timeout (1.5 s of 3 s) is delivered',
        withLogs(logs, async () => {
            const r = await request(port, { path: '/slow/ok?delay=1500', ms: 8000 * SLOW });
            assert.equal(r.status, 200);
            assert.equal(JSON.parse(r.body).path, '/slow/ok?delay=1500');
        }),
    );
});
