// eventsource.test.mjs: the npm `eventsource` client through the gateway: all events, reconnect with Last-Event-ID.
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { before, test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, withLogs } from './lib/harness.mjs';

setup();
let gw, be, port;
const logs = () => [gw];
const PER_CONN = 5;

before(async () => {
    /* Each connection gets PER_CONN events 40 ms apart from where Last-Event-ID says, then the backend closes. */
    be = await sseBackend({
        retry: 150,
        onStream: async st => {
            if (!st.url.startsWith('/es/resume')) return;
            for (let i = 0; i < PER_CONN && !st.closed; i++) {
                await sleep(40);
                st.send(`payload ${st.nextId}`);
            }
            await sleep(20);
            st.end();
        },
    });
    port = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({ port, routes: [{ name: 'es', path: '/es', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
        args: ['--access-log', 'off'],
        waitPorts: [port],
    });
});

test(
    'eventsource gets every event, reconnects after the backend closes, and resumes with no gap or duplicate',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const es = new EventSource(`http://127.0.0.1:${port}/es/resume`);
        track(() => es.close());
        const got = [];
        let opens = 0;
        let errors = 0;
        es.onopen = () => opens++;
        es.onerror = () => errors++;
        es.onmessage = ev => got.push({ id: ev.lastEventId, data: ev.data });
        const want = PER_CONN * 3;
        const deadline = Date.now() + 10000 * SLOW;
        while (got.length < want && Date.now() < deadline) await sleep(20);
        es.close();
        assert.equal(got.length >= want, true, `got ${got.length} of ${want} events: ${JSON.stringify(got)}`);
        const ids = got.map(g => Number(g.id));
        assert.deepEqual(ids.slice(0, want), Array.from({ length: want }, (_, i) => i + 1), 'ids not contiguous');
        for (const g of got) assert.equal(g.data, `payload ${g.id}`);
        const streams = be.streams.slice(first);
        assert.ok(streams.length >= 3, `backend saw ${streams.length} connections`);
        assert.equal(streams[0].lastEventId, undefined);
        assert.equal(streams[1].lastEventId, String(PER_CONN));
        assert.equal(streams[2].lastEventId, String(PER_CONN * 2));
        assert.ok(opens >= 3, `open events: ${opens}`);
        assert.ok(errors >= 2, `error (reconnect) events: ${errors}`);
    }),
);

test(
    'eventsource: named events, multi-line data and a long-lived stream with a slow event rate',
    withLogs(logs, async () => {
        const first = be.streams.length;
        const es = new EventSource(`http://127.0.0.1:${port}/es/manual`);
        track(() => es.close());
        const got = [];
        es.addEventListener('tick', ev => got.push(['tick', ev.data, ev.lastEventId]));
        es.onmessage = ev => got.push(['message', ev.data, ev.lastEventId]);
        const st = await be.stream(first);
        st.sendRaw('event: tick\nid: a1\ndata: line1\ndata: line2\n\n');
        await sleep(1200);
        st.sendRaw('id: a2\ndata: after a pause\n\n');
        const deadline = Date.now() + 3000;
        while (got.length < 2 && Date.now() < deadline) await sleep(10);
        es.close();
        assert.deepEqual(got, [
            ['tick', 'line1\nline2', 'a1'],
            ['message', 'after a pause', 'a2'],
        ]);
    }),
);
