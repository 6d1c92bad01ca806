// upstream-failure.test.mjs: a backend dies mid-event under live SSE streams: clients end cleanly at the last complete
// event, the npm eventsource client reconnects with Last-Event-ID to the other endpoint and misses nothing; refused
// connects are retried on the other endpoint before the response starts.
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { test } from 'node:test';
import { SLOW, freePort, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';
import { openTimedSse, prodYaml, sequenceBackends, sharedSequence } from './lib/prod-util.mjs';

setup();

let gw;
test(
    'backend killed mid-event: clean end at the last complete event, eventsource resumes on the other endpoint, no event lost',
    { timeout: 30000 * SLOW },
    withLogs(() => [gw], async () => {
        const seq = sharedSequence({ interval: 50, half: 20 });
        const be = await sequenceBackends(2, seq, { retry: 100 });
        const port = await freePort();
        gw = await startGateway({
            yaml: prodYaml({ port, routes: [{ name: 'es', path: '/es', backends: [{ service: 'svc' }] }], services: [{ name: 'svc', endpoints: be.ports }] }),
            args: ['--access-log', 'off', '--workers', '2'],
            waitPorts: [port],
        });
        seq.start();

        const got = [];
        const es = new EventSource(`http://127.0.0.1:${port}/es/main`);
        track(() => es.close());
        let errors = 0;
        es.onerror = () => errors++;
        es.onmessage = ev => got.push({ id: Number(ev.lastEventId), data: ev.data, t: performance.now() });
        const raws = [];
        for (let i = 0; i < 6; i++) raws.push(openTimedSse(port, `/es/raw-${i}`));
        await Promise.all(raws.map(h => h.head));
        const deadline = Date.now() + 5000 * SLOW;
        while (got.length < 10 && Date.now() < deadline) await sleep(10);
        assert.ok(got.length >= 10, `eventsource got ${got.length} events before the kill`);

        /* Kill the eventsource's backend right after it wrote the first half of an event. */
        const main = be.streams.filter(s => s.url === '/es/main');
        assert.equal(main.length, 1);
        const victim = main[0].i;
        const onVictim = raws.filter((_, k) => be.streams.find(s => s.url === `/es/raw-${k}`).i === victim);
        const killedAt = await new Promise(resolve => {
            seq.onFirstHalf = id => {
                seq.onFirstHalf = null;
                be.kill(victim);
                resolve(id);
            };
        });

        /* Streams on the dead backend end cleanly: the chunked end, after the last complete event. */
        await Promise.race([Promise.all(onVictim.map(h => h.done)), sleep(3000 * SLOW)]);
        for (const h of onVictim) {
            assert.ok(h.ended, 'a stream on the killed backend did not end');
            assert.equal(h.complete, true, `not a clean end; tail ${JSON.stringify(h.text.slice(-60))}`);
            assert.ok(h.text.endsWith('\n\n'), `stream does not end at an event boundary; tail ${JSON.stringify(h.text.slice(-60))}`);
            assert.ok(!h.text.includes(`id: ${killedAt}\n`), `the half event ${killedAt} reached the client`);
            for (const e of h.events) assert.equal(e.data, `tick ${e.id}`);
        }
        for (const h of raws.filter(x => !onVictim.includes(x))) assert.ok(!h.ended, 'a stream on the surviving backend ended');

        /* The eventsource reconnects with Last-Event-ID to the survivor and misses nothing. */
        const want = killedAt + 20;
        const d2 = Date.now() + 8000 * SLOW;
        while ((got.length ? got[got.length - 1].id : 0) < want && Date.now() < d2) await sleep(10);
        es.close();
        assert.ok(got[got.length - 1].id >= want, `eventsource stopped at id ${got[got.length - 1].id}, wanted ${want} (errors ${errors})`);
        for (let k = 1; k < got.length; k++) {
            assert.equal(got[k].id, got[k - 1].id + 1, `eventsource: id ${got[k - 1].id} then ${got[k].id}`);
            assert.equal(got[k].data, `tick ${got[k].id}`);
        }
        assert.ok(errors >= 1, 'eventsource saw no reconnect');
        const resumed = be.streams.filter(s => s.url === '/es/main').slice(1);
        assert.ok(resumed.length >= 1, 'no reconnect reached a backend');
        assert.equal(resumed[0].i, 1 - victim, 'the reconnect reached the dead endpoint?');
        assert.equal(resumed[0].lastEventId, String(killedAt - 1), 'reconnect did not carry the last complete id as Last-Event-ID');

        /* New requests succeed although one endpoint refuses: a refused connect is retried on the other one. */
        const fresh = [];
        for (let i = 0; i < 12; i++) fresh.push(openTimedSse(port, `/es/after-${i}`));
        await Promise.all(fresh.map(h => Promise.race([h.head, sleep(3000 * SLOW)])));
        const statuses = fresh.map(h => h.status);
        assert.deepEqual(statuses, new Array(12).fill(200), `requests after the kill: ${statuses.join(',')}`);
        for (const h of [...fresh, ...raws]) h.close();
    }),
);
