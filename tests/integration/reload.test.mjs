// reload.test.mjs: SIGHUP with streams open: old streams keep their backend with no gap, new requests follow the new
// routes, a new listener opens and a removed one refuses; a broken config is rejected and the old one stays.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { httpGet, openTimedSse, probeConnect, prodYaml, scrape, sequenceBackends, sharedSequence, taggedBackends, waitLog } from './lib/prod-util.mjs';

setup();

function config({ listeners, sseService, bService, sseEndpoints, tagged, extraBroken = '' }) {
    return (
        prodYaml({
            listeners,
            routes: [
                { name: 'a', path: '/sse', backends: [{ service: sseService }] },
                { name: 'b', path: '/b', backends: [{ service: bService }] },
            ],
            services: [
                { name: 'seq', endpoints: sseEndpoints },
                ...tagged.ports.map((p, i) => ({ name: `t${i}`, endpoints: [p] })),
            ],
        }) + extraBroken
    );
}

/* The largest time between consecutive events of h after `from` (ms), and whether ids are contiguous. */
function continuity(h, from) {
    let maxGap = 0;
    for (let k = 1; k < h.events.length; k++) {
        assert.equal(Number(h.events[k].id), Number(h.events[k - 1].id) + 1, `gap in ids: ${h.events[k - 1].id} -> ${h.events[k].id}`);
        assert.equal(h.events[k].data, `tick ${h.events[k].id}`);
        if (h.events[k].t >= from) maxGap = Math.max(maxGap, h.events[k].t - h.events[k - 1].t);
    }
    return maxGap;
}

let gw;
test(
    'reload: new routes and listeners for new requests, live streams untouched, broken config rejected',
    { timeout: 40000 * SLOW },
    withLogs(() => [gw], async () => {
        const seq = sharedSequence({ interval: 50, half: 10 });
        const sse = await sequenceBackends(1, seq, { retry: null });
        const tagged = await taggedBackends(3);
        const [p1, p2, p3, p4] = [await freePort(), await freePort(), await freePort(), await freePort()];
        const admin = await freePort();
        const yamlA = config({
            listeners: [{ name: 'main', port: p1 }, { name: 'old', port: p2 }],
            sseService: 'seq',
            bService: 't0',
            sseEndpoints: sse.ports,
            tagged,
        });
        gw = await startGateway({ yaml: yamlA, args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`], waitPorts: [p1, p2, admin] });
        seq.start();
        assert.equal((await httpGet(p1, '/b')).body, 'backend 0');

        const streams = [];
        for (let i = 0; i < 8; i++) streams.push(openTimedSse(i % 4 === 3 ? p2 : p1, `/sse/${i}`));
        await Promise.all(streams.map(h => h.head));
        await sleep(400);
        for (const h of streams) {
            assert.equal(h.status, 200);
            assert.ok(h.events.length >= 3, 'streams do not flow before the reload');
        }

        /* Good reload: route a -> t1 (SSE), route b -> t2; listener p2 goes, p3 comes. */
        fs.writeFileSync(
            gw.config,
            config({ listeners: [{ name: 'main', port: p1 }, { name: 'new', port: p3 }], sseService: 't1', bService: 't2', sseEndpoints: sse.ports, tagged }),
        );
        const mark = gw.stderr.length;
        const tReload = performance.now();
        gw.child.kill('SIGHUP');
        await waitLog(gw, /config reloaded \(generation 2\)/, 3000 * SLOW, mark);

        const b1 = await httpGet(p1, '/b');
        assert.equal(b1.body, 'backend 2', 'a new request after the reload did not follow the new route');
        /* Workers open their sockets when they next wake: allow a moment. */
        let p3state;
        for (let i = 0; i < 20 && (p3state = await probeConnect(p3)) !== 'open'; i++) await sleep(50);
        assert.equal(p3state, 'open', `new listener ${p3} not open after the reload`);
        assert.equal((await httpGet(p3, '/b')).body, 'backend 2', 'the new listener does not route');
        assert.equal(await probeConnect(p2), 'refused', `removed listener ${p2} still accepts`);
        const fresh = openTimedSse(p1, '/sse/new');
        await fresh.head;
        const deadline = Date.now() + 2000 * SLOW;
        while (!fresh.events.length && Date.now() < deadline) await sleep(10);
        assert.equal(fresh.events[0]?.data, 'backend 1', 'a new SSE stream did not follow the new route');

        await sleep(500);
        for (const [i, h] of streams.entries()) {
            assert.ok(!h.ended, `stream ${i} (${i % 4 === 3 ? 'on the removed listener' : 'on the kept listener'}) ended on reload`);
            const gap = continuity(h, tReload - 200);
            assert.ok(gap < 250 * SLOW, `stream ${i}: ${gap.toFixed(0)} ms without events around the reload (ticks every 50 ms)`);
            assert.ok(h.events.some(e => e.t > tReload + 400), `stream ${i} got no events after the reload`);
        }
        let m = await scrape(admin);
        assert.equal(m.get('ssegate_config_reloads_total', { result: 'ok' }), 1);
        assert.equal(m.get('ssegate_config_reloads_total', { result: 'failed' }), 0);
        assert.equal(m.get('ssegate_config_generation'), 2);

        /* Broken reload: it would also open p4 and route b to t0; nothing of it may take effect. */
        const broken =
            config({ listeners: [{ name: 'main', port: p1 }, { name: 'other', port: p4 }], sseService: 't0', bService: 't0', sseEndpoints: sse.ports, tagged }) +
            `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: broken}
spec:
  parentRefs: [{name: no-such-gateway}]
  rules: [{matches: [{path: {type: PathPrefix, value: no-slash}}]}]
`;
        fs.writeFileSync(gw.config, broken);
        const mark2 = gw.stderr.length;
        gw.child.kill('SIGHUP');
        await waitLog(gw, /reload of .* failed/, 3000 * SLOW, mark2);
        assert.match(gw.stderr.slice(mark2), /:\d+:\d+: /, 'the broken config\'s problems were not logged as FILE:LINE:COL');
        assert.ok(gw.running(), 'gateway died on a broken reload');
        assert.equal((await httpGet(p1, '/b')).body, 'backend 2', 'a broken reload changed the routes');
        assert.equal((await httpGet(p3, '/b')).body, 'backend 2', 'a broken reload closed a listener');
        assert.equal(await probeConnect(p4), 'refused', 'a broken reload opened its listener');
        m = await scrape(admin);
        assert.equal(m.get('ssegate_config_reloads_total', { result: 'failed' }), 1);
        assert.equal(m.get('ssegate_config_reloads_total', { result: 'ok' }), 1);
        assert.equal(m.get('ssegate_config_generation'), 2);
        for (const [i, h] of streams.entries()) {
            assert.ok(!h.ended, `stream ${i} ended after the broken reload`);
            continuity(h, 0);
        }
    }),
);
