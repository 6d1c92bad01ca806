// fanout-ended.test.mjs: a subscriber on a dedicated replay (a Last-Event-ID the shared ring cannot serve) whose
// shared stream ends for good meanwhile (a 204 on resume, or a first answer that is not an event stream) is never
// left on the dead stream. When its replay reaches the events of the ended stream's ring, it gets those it had not
// seen (gapless, no duplicate) and then the end the stream's other subscribers got, at an event boundary: a clean
// end after a 204; a clean end with a retry: hint when the stream never went live (its client already has an event
// stream head of its own, so the others' error answer cannot be given). Its EventSource then reconnects and joins
// the key's current stream. Covered: --workers 1 and 2 (subscribers on the owner and on a follower worker, whose
// follower hub ends by the owner's message), HTTP/2, a new shared stream opened for the key meanwhile (the
// subscriber does not attach to the dead one, the new one keeps serving its own), and, on 1 and 2 workers, a replay
// that merged before the stream failed to go live (it was left without an end too) and one that merged after.
// Why: the end of a shared stream ended its subscribers on the shared list only; one still on its dedicated replay
// later moved onto the dead stream's ring, and its client waited forever on an open stream with no event and no end.
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { test } from 'node:test';
import { fanoutYaml, gatedBackend, perWorker } from './lib/fanout-util.mjs';
import { SLOW, freePort, setup, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';
import { SseParser, openSse } from './lib/sseclient.mjs';

setup();
const T = 5000 * SLOW;
let gw;
const logs = () => [gw];

async function start(workers, be) {
    const port = await freePort();
    const admin = await freePort();
    gw = await startGateway({
        yaml: fanoutYaml({
            port,
            routes: [{
                name: 'live', path: '/live', backends: [{ service: '127.0.0.1', port: be.port }],
                policy: '{heartbeatInterval: 0s, sharing: {enabled: true, lingerAfterLastSubscriber: 300ms}}',
            }],
        }),
        args: ['--access-log', 'off', '--workers', String(workers), '--admin', `127.0.0.1:${admin}`],
        waitPorts: [port, admin],
    });
    return { port, admin };
}

/* open(lei): a subscriber from the next source address; h.worker is the worker that counted it. */
function opener({ port, admin }, workers) {
    let addr = 2;
    return async lei => {
        const before = await perWorker(admin, workers);
        const h = openSse(port, '/live/x', { localAddress: `127.0.0.${addr++}`, headers: lei ? { 'last-event-id': lei } : {} });
        h.head.catch(() => {});
        let after;
        await waitFor(async () => {
            after = await perWorker(admin, workers);
            return after.reduce((a, b) => a + b, 0) === before.reduce((a, b) => a + b, 0) + 1;
        }, T, 'the new subscriber to be counted');
        h.worker = after.findIndex((v, i) => v === before[i] + 1);
        return h;
    };
}

const evIds = h => h.events.filter(e => e.data !== undefined && e.data !== '').map(e => e.id);

/* The stream reached its end cleanly (a complete chunked body). */
async function endsCleanly(h, what) {
    await waitFor(() => h.ended, T, `${what} to end`);
    assert.equal(h.complete, true, `${what} was cut, not ended`);
}

for (const workers of [1, 2]) {
    test(
        `--workers ${workers}: a 204 ends the shared stream while subscribers (on every worker) are on a dedicated ` +
            'replay: each gets the events it lacked from the ring, then the same clean end; a new stream for the ' +
            'key is not joined by them and keeps serving',
        { timeout: 120000 * SLOW },
        withLogs(logs, async () => {
            const be = await gatedBackend();
            const gwp = await start(workers, be);
            const open = opener(gwp, workers);
            const a = await open();
            const up = await waitFor(() => be.reqs.find(r => r.lei === undefined), T, 'the shared upstream request');
            up.answer();
            for (let id = 1; id <= 5; id++) up.send(id);
            await waitFor(() => evIds(a).length === 5, T, 'the first subscriber\'s five events');

            /* Subscribers with an id the ring does not hold, until one landed on each worker (bounded). A
             * subscriber without one first on each worker, so that a follower hub exists there with the ring. */
            const plain = [a];
            for (let i = 0; i < 40 && new Set(plain.map(h => h.worker)).size < workers; i++) plain.push(await open());
            assert.equal(new Set(plain.map(h => h.worker)).size, workers, 'no subscriber on some worker');
            const cs = [];
            for (let i = 0; i < 40 && new Set(cs.map(h => h.worker)).size < workers; i++) cs.push(await open('old'));
            assert.equal(new Set(cs.map(h => h.worker)).size, workers, 'no replaying subscriber on some worker');
            const ded = await waitFor(() => {
                const l = be.reqs.filter(r => r.lei === 'old');
                return l.length === cs.length && l;
            }, T, 'a dedicated replay request per replaying subscriber');

            /* The shared upstream ends; its resume is answered 204: the shared subscribers end cleanly. */
            up.res.end();
            const resume = await waitFor(() => be.reqs.find(r => r.lei === '5'), T, 'the resume request');
            resume.noContent();
            for (const h of plain) await endsCleanly(h, `a shared subscriber on worker ${h.worker}`);
            assert.ok(cs.every(h => !h.ended), 'a replaying subscriber ended before its replay met the stream');

            /* A new subscriber opens a new shared stream for the key. */
            const b = await open();
            const up2 = await waitFor(() => be.reqs.find(r => r.lei === undefined && r !== up), T, 'a new shared upstream request');
            up2.answer();
            up2.send(10);
            await waitFor(() => evIds(b).length === 1, T, 'the new stream\'s first event');

            /* The dedicated replays reach an event the ended stream's ring holds. */
            for (const d of ded) {
                d.answer();
                d.send(3);
                d.send(4);
            }
            for (const h of cs) {
                await endsCleanly(h, `a replaying subscriber on worker ${h.worker}`);
                assert.deepEqual(evIds(h), ['3', '4', '5'], 'the replay and the ended ring\'s rest, once each');
                assert.ok(!/retry:/.test(h.text), 'a retry: hint the other subscribers did not get');
            }
            await waitFor(() => ded.every(d => d.closed), T, 'the dedicated replay requests to close');

            /* The new stream goes on for its own subscriber, and it is the only one left. */
            up2.send(11);
            await waitFor(() => evIds(b).length === 2, T, 'the new stream\'s second event');
            assert.equal(b.ended, false);
            await waitFor(async () => (await scrape(gwp.admin)).get('ssegate_fanout_subscribers') === 1, T,
                'only the new stream\'s subscriber to be counted');
            b.close();
            await waitFor(async () => (await scrape(gwp.admin)).get('ssegate_fanout_subscribers') === 0, T,
                'every subscriber to be counted out');
            await waitFor(async () => {
                const m = await scrape(gwp.admin);
                return m.get('ssegate_fanout_streams') === 0 && m.get('ssegate_fanout_follower_streams') === 0;
            }, T, 'every shared stream and follower to close');
            await gw.stop();
        }),
    );
}

for (const workers of [1, 2]) {
    test(
        `--workers ${workers}: a shared stream that never goes live (its first answer is a 503): subscribers (on every ` +
            'worker) whose replay met its ring (the id it was opened with) before the 503, and after it, end ' +
            'cleanly with a retry: hint',
        { timeout: 120000 * SLOW },
        withLogs(logs, async () => {
            const be = await gatedBackend();
            const gwp = await start(workers, be);
            const open = opener(gwp, workers);
            /* Opens subscribers with Last-Event-ID lei until one landed on each worker (bounded). */
            const onEach = async lei => {
                const l = [];
                for (let i = 0; i < 40 && new Set(l.map(h => h.worker)).size < workers; i++) l.push(await open(lei));
                assert.equal(new Set(l.map(h => h.worker)).size, workers, `no subscriber (${lei}) on some worker`);
                return l;
            };
            const dedicated = (lei, n) => waitFor(() => {
                const l = be.reqs.filter(r => r.lei === lei);
                return l.length === n && l;
            }, T, `a dedicated replay request per subscriber (${lei})`);
            /* The stream is opened with Last-Event-ID 7: its ring's base is 7, on the owner and on a follower. */
            const plain = await onEach('7');
            const up = await waitFor(() => be.reqs.find(r => r.lei === '7'), T, 'the shared upstream request');

            /* These meet the ring (its base) before the stream has answered. */
            const early = await onEach('old1');
            const d1 = await dedicated('old1', early.length);
            for (const d of d1) {
                d.answer();
                d.send(7);
            }
            for (const h of early) await waitFor(() => evIds(h).length === 1, T, 'an early replay\'s event');
            await waitFor(() => d1.every(d => d.closed), T, 'the merged replays\' dedicated requests to close');
            const late = await onEach('old2');
            const d2 = await dedicated('old2', late.length);

            up.fail();
            for (const h of plain) {
                await waitFor(() => h.ended, T, 'a waiting subscriber\'s answer');
                assert.equal(h.status, 503);
            }
            for (const h of early) {
                await endsCleanly(h, `a subscriber that merged before the 503 (worker ${h.worker})`);
                assert.match(h.text, /retry: \d+/);
                assert.deepEqual(evIds(h), ['7']);
            }

            for (const d of d2) {
                d.answer();
                d.send(6);
                d.send(7);
            }
            for (const h of late) {
                await endsCleanly(h, `a subscriber that merged after the 503 (worker ${h.worker})`);
                assert.deepEqual(evIds(h), ['6', '7']);
                assert.match(h.text, /retry: \d+/);
            }
            await waitFor(() => d2.every(d => d.closed), T, 'the late dedicated requests to close');
            assert.equal(be.reqs.filter(r => r.lei === '7').length, 1, 'a second shared upstream request');
            await waitFor(async () => {
                const m = await scrape(gwp.admin);
                return m.get('ssegate_fanout_subscribers') === 0 && m.get('ssegate_fanout_streams') === 0 &&
                    m.get('ssegate_fanout_follower_streams') === 0;
            }, T, 'every subscriber, stream and follower to be gone');
            await gw.stop();
        }),
    );
}

test(
    'HTTP/2: a subscriber on a dedicated replay of a stream ended by a 204 ends cleanly once its replay meets the ring',
    { timeout: 60000 * SLOW },
    withLogs(logs, async () => {
        const be = await gatedBackend();
        const gwp = await start(1, be);
        const a = openSse(gwp.port, '/live/x');
        const up = await waitFor(() => be.reqs.find(r => r.lei === undefined), T, 'the shared upstream request');
        up.answer();
        for (let id = 1; id <= 3; id++) up.send(id);
        await waitFor(() => evIds(a).length === 3, T, 'the first subscriber\'s events');

        const ses = http2.connect(`http://127.0.0.1:${gwp.port}`);
        ses.on('error', () => {});
        track(() => ses.destroy());
        const c = { events: [], ended: false, status: 0 };
        const p = new SseParser(ev => c.events.push(ev));
        const req = ses.request({ ':path': '/live/x', accept: 'text/event-stream', 'last-event-id': 'old' });
        req.setEncoding('utf8');
        req.on('response', hd => (c.status = hd[':status']));
        req.on('data', d => p.push(d));
        req.on('end', () => (c.ended = true));
        req.on('error', e => (c.error = e));
        const d = await waitFor(() => be.reqs.find(r => r.lei === 'old'), T, 'the dedicated replay request');

        up.res.end();
        const resume = await waitFor(() => be.reqs.find(r => r.lei === '3'), T, 'the resume request');
        resume.noContent();
        await endsCleanly(a, 'the shared subscriber');

        d.answer();
        d.send(2);
        await waitFor(() => c.ended, T, 'the HTTP/2 replaying subscriber\'s stream to end');
        assert.equal(c.error, undefined);
        assert.equal(c.status, 200);
        assert.deepEqual(evIds(c), ['2', '3']);
        await waitFor(() => d.closed, T, 'the dedicated request to close');
        ses.close();
        await waitFor(async () => (await scrape(gwp.admin)).get('ssegate_fanout_subscribers') === 0, T,
            'every subscriber to be counted out');
        await gw.stop();
    }),
);
