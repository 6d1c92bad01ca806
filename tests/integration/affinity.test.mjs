// affinity.test.mjs: RoutePolicy sessionAffinity: a reconnecting SSE client that sends back the affinity cookie returns
// to its endpoint while it is healthy (managed-cookie AGCAffinity, application-cookie), and moves when it dies.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { openTimedSse, prodYaml, taggedBackends } from './lib/prod-util.mjs';

setup();

/* One SSE connection: resolves {backend, setCookie: [..]} after its first event, then closes it. */
async function connect(port, cookie) {
    const h = openTimedSse(port, '/sse/live', { headers: cookie ? { cookie } : {} });
    await Promise.race([h.head, sleep(5000 * SLOW)]);
    assert.equal(h.status, 200, `SSE request failed: ${h.error?.message || h.status}`);
    const deadline = Date.now() + 3000 * SLOW;
    while (!h.events.length && Date.now() < deadline) await sleep(5);
    assert.ok(h.events.length, 'no first event');
    h.close();
    const sc = h.headers['set-cookie'] || [];
    return { backend: Number(h.events[0].data.split(' ')[1]), setCookie: sc };
}

function cookieOf(setCookie, name) {
    for (const c of setCookie) {
        const m = new RegExp(`^${name}=([^;]*)(.*)$`).exec(c);
        if (m) return { value: m[1], attrs: m[2] };
    }
    return null;
}

let gw;
for (const mode of [
    { type: 'managed-cookie', cookie: 'AGCAffinity', maxAge: 86400 },
    { type: 'application-cookie', cookie: 'sess_id', maxAge: 3600, duration: '1h' },
]) {
    test(
        `${mode.type}: reconnects with the cookie return to the same endpoint; without it they spread; a dead endpoint rebinds`,
        { timeout: 30000 * SLOW },
        withLogs(() => [gw], async () => {
            const be = await taggedBackends(4);
            const port = await freePort();
            gw = await startGateway({
                yaml: prodYaml({
                    port,
                    routes: [{ name: 'live', path: '/sse', backends: [{ service: 'svc' }], affinity: { type: mode.type, cookieName: mode.type === 'application-cookie' ? mode.cookie : undefined, cookieDuration: mode.duration } }],
                    services: [{ name: 'svc', endpoints: be.ports }],
                }),
                args: ['--access-log', 'off', '--workers', '2'],
                waitPorts: [port],
            });

            const first = await connect(port);
            const c = cookieOf(first.setCookie, mode.cookie);
            assert.ok(c, `first response has no ${mode.cookie} Set-Cookie: ${JSON.stringify(first.setCookie)}`);
            assert.match(c.attrs, new RegExp(`Max-Age=${mode.maxAge}(;|$)`, 'i'), `cookie lifetime: ${c.attrs}`);
            assert.match(c.attrs, /Path=\//i);

            /* Back with the cookie (among others), on new connections: always the same endpoint. */
            for (let i = 0; i < 12; i++) {
                const r = await connect(port, i % 2 ? `${mode.cookie}=${c.value}` : `theme=dark; ${mode.cookie}=${c.value}; lang=en`);
                assert.equal(r.backend, first.backend, `reconnect ${i} with the cookie went to endpoint ${r.backend}, not ${first.backend}`);
            }
            /* Without the cookie (or with a stale value) the strategy picks, and a cookie is handed out. */
            const seen = new Set();
            for (let i = 0; i < 8; i++) {
                const r = await connect(port, i % 2 ? undefined : `${mode.cookie}=0000000000000000`);
                seen.add(r.backend);
                assert.ok(cookieOf(r.setCookie, mode.cookie), `request ${i} without a valid cookie got no Set-Cookie`);
            }
            assert.ok(seen.size >= 3, `without the cookie requests went to ${[...seen]} only`);

            /* The endpoint dies: the client is served elsewhere, bound to its new endpoint, and stays there. */
            await be.close(first.backend);
            let cookie = `${mode.cookie}=${c.value}`;
            let moved = null;
            for (let i = 0; i < 2 && !moved; i++) {
                const r = await connect(port, cookie);
                assert.notEqual(r.backend, first.backend);
                const nc = cookieOf(r.setCookie, mode.cookie);
                if (nc) {
                    assert.notEqual(nc.value, c.value, 'rebound to the dead endpoint');
                    cookie = `${mode.cookie}=${nc.value}`;
                    moved = r.backend;
                }
            }
            assert.ok(moved !== null, 'after its endpoint died the client was never handed a new affinity cookie');
            for (let i = 0; i < 6; i++) {
                const r = await connect(port, cookie);
                assert.equal(r.backend, moved, `after the move, reconnect ${i} went to ${r.backend}, not ${moved}`);
            }
        }),
    );
}
