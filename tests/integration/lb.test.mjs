// lb.test.mjs: load-balancing distributions: least-request (1,000 SSE streams over 4 endpoints with churn), round-robin,
// backendRef weights 1:3 and ring-hash (a key keeps its endpoint; keys spread; removing an endpoint moves only its keys).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { SLOW, freePort, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { httpGet, openTimedSse, prodYaml, taggedBackends, waitLog } from './lib/prod-util.mjs';

setup();

async function gatewayFor(yamlOf, workers = 2) {
    const port = await freePort();
    const gw = await startGateway({ yaml: yamlOf(port), args: ['--access-log', 'off', '--workers', String(workers)], waitPorts: [port] });
    return { port, gw };
}

const spread = counts => counts.map((c, i) => `#${i}: ${c}`).join(', ');

let gws = [];
const logs = () => gws;

test(
    'least-request: 1,000 SSE streams over 4 endpoints, with streams of endpoint 0 closing between batches, land within ±5% of even',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await taggedBackends(4);
        const { port, gw } = await gatewayFor(p =>
            prodYaml({ port: p, routes: [{ name: 'lr', path: '/', backends: [{ service: 'svc' }] }], services: [{ name: 'svc', endpoints: be.ports, strategy: 'least-request' }] }),
        );
        gws = [gw];
        const open = [];
        const batch = async n => {
            const hs = [];
            for (let i = 0; i < n; i++) hs.push(openTimedSse(port, `/sse/${open.length + i}`, { localAddress: `127.0.0.${2 + ((open.length + i) % 50)}` }));
            await Promise.all(hs.map(h => Promise.race([h.head, sleep(10000 * SLOW)])));
            const deadline = Date.now() + 5000 * SLOW;
            while (hs.some(h => !h.events.length) && Date.now() < deadline) await sleep(10);
            for (const h of hs) {
                assert.equal(h.status, 200, `stream open failed: ${h.error?.message || h.status}`);
                assert.ok(h.events.length, 'stream got no first event');
                h.backend = Number(h.events[0].data.split(' ')[1]);
            }
            open.push(...hs);
        };
        /* Streams on endpoint 0 keep closing (as if its clients left): round-robin would leave it ~150 short. */
        await batch(200);
        for (let r = 0; r < 8; r++) {
            const victims = open.filter(h => h.backend === 0 && !h.ended).slice(0, 25);
            assert.equal(victims.length, 25, `round ${r}: only ${victims.length} streams on endpoint 0 to close`);
            const before = be.streams[0].filter(res => res.destroyed || res.writableEnded || res.closed).length;
            for (const h of victims) {
                h.close();
                open.splice(open.indexOf(h), 1);
            }
            /* the gateway has let go of them when the backend sees the upstream close */
            const deadline = Date.now() + 3000 * SLOW;
            while (be.streams[0].filter(res => res.closed || res.destroyed).length < before + 25 && Date.now() < deadline) await sleep(10);
            await sleep(50);
            await batch(125);
        }
        assert.equal(open.length, 1000);
        const counts = [0, 0, 0, 0];
        for (const h of open) counts[h.backend]++;
        const live = be.streams.map(list => list.filter(res => !res.closed && !res.destroyed).length);
        assert.deepEqual(live, counts, 'backends and clients disagree on where the streams are');
        for (const c of counts) assert.ok(Math.abs(c - 250) <= 12.5, `not within ±5% of 250 per endpoint: ${spread(counts)}`);
        for (const h of open) h.close();
    }),
);

test(
    'round-robin (default): 400 requests over 4 endpoints, each gets 100 ± 2 (one counter per worker)',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await taggedBackends(4);
        const { port, gw } = await gatewayFor(p => prodYaml({ port: p, routes: [{ name: 'rr', path: '/', backends: [{ service: 'svc' }] }], services: [{ name: 'svc', endpoints: be.ports }] }));
        gws = [gw];
        for (let i = 0; i < 400; i += 8) {
            const rs = await Promise.all(Array.from({ length: 8 }, (_, k) => httpGet(port, `/rr/${i + k}`)));
            for (const r of rs) assert.equal(r.status, 200);
        }
        for (const c of be.hits) assert.ok(Math.abs(c - 100) <= 2, `round-robin uneven: ${spread(be.hits)}`);
        /* in turn, per worker: with one worker, consecutive requests take the endpoints one after another */
        const one = await taggedBackends(4);
        const g1 = await gatewayFor(p => prodYaml({ port: p, routes: [{ name: 'rr', path: '/', backends: [{ service: 'svc' }] }], services: [{ name: 'svc', endpoints: one.ports }] }), 1);
        gws = [g1.gw];
        const order = [];
        for (let i = 0; i < 12; i++) order.push(Number((await httpGet(g1.port, `/seq/${i}`)).body.split(' ')[1]));
        for (let i = 4; i < 12; i++) assert.equal(order[i], order[i - 4], `not in turn: ${order.join(',')}`);
        assert.equal(new Set(order.slice(0, 4)).size, 4, `not in turn: ${order.join(',')}`);
    }),
);

test(
    'weighted backendRefs 1:3: 800 requests split about 200:600',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await taggedBackends(2);
        const { port, gw } = await gatewayFor(p =>
            prodYaml({
                port: p,
                routes: [{ name: 'w', path: '/', backends: [{ service: 's0', weight: 1 }, { service: 's1', weight: 3 }] }],
                services: [
                    { name: 's0', endpoints: [be.ports[0]] },
                    { name: 's1', endpoints: [be.ports[1]] },
                ],
            }),
        );
        gws = [gw];
        for (let i = 0; i < 800; i += 16) {
            const rs = await Promise.all(Array.from({ length: 16 }, (_, k) => httpGet(port, `/w/${i + k}`)));
            for (const r of rs) assert.equal(r.status, 200);
        }
        /* binomial(800, 0.75): sd 12.2; ±50 is four of them */
        assert.ok(Math.abs(be.hits[1] - 600) <= 50, `weights 1:3 gave ${spread(be.hits)}`);
        assert.equal(be.hits[0] + be.hits[1], 800);
    }),
);

test(
    'ring-hash: the same key keeps its endpoint, keys spread, removing an endpoint moves only its keys',
    { timeout: 30000 * SLOW },
    withLogs(logs, async () => {
        const be = await taggedBackends(4);
        const yamlOf = (p, eps) =>
            prodYaml({
                port: p,
                routes: [{ name: 'rh', path: '/', backends: [{ service: 'svc' }] }],
                services: [{ name: 'svc', endpoints: eps, strategy: 'ring-hash', ringHash: '{header: x-user}' }],
            });
        const { port, gw } = await gatewayFor(p => yamlOf(p, be.ports));
        gws = [gw];
        const who = async key => {
            const r = await httpGet(port, `/k/${key}`, { headers: { 'x-user': key } });
            assert.equal(r.status, 200);
            return Number(r.body.split(' ')[1]);
        };
        const keys = Array.from({ length: 48 }, (_, i) => `user-${i * 7919}`);
        const home = new Map();
        for (const k of keys) {
            const first = await who(k);
            for (let j = 0; j < 3; j++) assert.equal(await who(k), first, `key ${k} moved between endpoints`);
            home.set(k, first);
        }
        const counts = [0, 0, 0, 0];
        for (const v of home.values()) counts[v]++;
        /* 48 keys over 4 endpoints: each should hold some (P(<= 2 of 48) for a fair hash is ~1e-4) */
        for (const c of counts) assert.ok(c >= 3 && c <= 24, `keys do not spread: ${spread(counts)}`);

        /* Without the header the client address is the key: requests from one address stay together. */
        const byAddr = new Map();
        for (let a = 10; a < 30; a++) {
            const got = new Set();
            for (let j = 0; j < 3; j++) {
                const r = (await httpGet(port, `/addr/${a}`, { localAddress: `127.0.0.${a}` })).body;
                got.add(Number(r.split(' ')[1]));
            }
            assert.equal(got.size, 1, `client 127.0.0.${a} was spread over endpoints ${[...got]}`);
            byAddr.set(a, [...got][0]);
        }
        assert.ok(new Set(byAddr.values()).size >= 2, 'all client addresses hash to one endpoint');

        /* Remove endpoint 3 by reload: keys on 0..2 keep their endpoint; keys of 3 move elsewhere. */
        fs.writeFileSync(gw.config, yamlOf(port, be.ports.slice(0, 3)));
        const mark = gw.stderr.length;
        gw.child.kill('SIGHUP');
        await waitLog(gw, /config reloaded/, 3000 * SLOW, mark);
        for (const k of keys) {
            const now = await who(k);
            if (home.get(k) === 3) assert.notEqual(now, 3, `key ${k} still reaches the removed endpoint`);
            else assert.equal(now, home.get(k), `key ${k} moved from ${home.get(k)} to ${now} although its endpoint stayed`);
        }
    }),
);
