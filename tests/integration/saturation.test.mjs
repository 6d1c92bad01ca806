// saturation.test.mjs: a worker that finds a full batch of ready sockets pauses (--saturation-pause-us) and counts it
// (ssegate_worker_saturated_rounds_total); nothing is lost or reordered across those pauses, and a pause of 0 (yield
// only) is accepted. The backend is the C bench origin (one write per event per stream, every 1 ms), so 400 streams
// through one worker saturate it on any machine; the client de-chunks every stream and checks that ids have no gap.
// By default (--saturation-tunnels relay), WebSocket relays are the exception: a full batch of tunnels (the bench's echo
// origin and closed-loop client, 400 WebSockets with 4 messages in flight each) is flushed at once and never pauses
// (ssegate_worker_relay_full_rounds_total counts those batches); with --saturation-tunnels pause they count like
// any socket.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { BIN, SLOW, freePort, gatewayYaml, setup, sleep, startGateway, track, waitFor, withLogs } from './lib/harness.mjs';
import { scrape } from './lib/prod-util.mjs';

setup();
const STREAMS = 400;
const BENCH = path.join(process.env.SG_BUILD_DIR || path.join(path.dirname(BIN), 'build'), 'bench');
const ORIGIN = path.join(BENCH, 'origin');

async function startOrigin() {
    assert.ok(fs.existsSync(ORIGIN), `${ORIGIN} not built (make all builds it)`);
    const port = await freePort();
    const child = spawn(ORIGIN, ['--port', String(port), '--interval-us', '1000'], { stdio: 'ignore' });
    track(() => new Promise(r => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGKILL')))));
    await waitFor(
        () => new Promise(r => {
            const s = net.connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
            s.on('error', () => r(false));
        }),
        5000 * SLOW,
        'the origin listening',
    );
    return port;
}

/* One HTTP/1.1 SSE stream: de-chunks the body, checks that "id: N" lines go up by one. */
function openStream(port, i) {
    const st = { ids: 0, last: -1, gaps: 0, err: null, head: '', inHead: true, chunkLeft: -1, sizeLine: '', line: '' };
    const sock = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 200)}` });
    track(() => sock.destroy());
    st.sock = sock;
    sock.setEncoding('latin1');
    sock.on('error', e => (st.err = e));
    sock.on('connect', () => sock.write(`GET /sse?s=${i} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n`));
    const bodyText = t => {
        for (const c of t) {
            if (c !== '\n') {
                st.line += c;
                continue;
            }
            const m = /^id: (\d+)$/.exec(st.line);
            st.line = '';
            if (!m) continue;
            const id = Number(m[1]);
            if (st.last >= 0 && id !== st.last + 1) st.gaps++;
            st.last = id;
            st.ids++;
        }
    };
    sock.on('data', d => {
        let p = 0;
        if (st.inHead) {
            st.head += d;
            const e = st.head.indexOf('\r\n\r\n');
            if (e < 0) return;
            assert.match(st.head, /^HTTP\/1\.1 200 /);
            assert.match(st.head, /transfer-encoding: chunked/i);
            d = st.head.slice(e + 4);
            st.inHead = false;
        }
        while (p < d.length) {
            if (st.chunkLeft > 0) {
                const k = Math.min(st.chunkLeft, d.length - p);
                bodyText(d.slice(p, p + k));
                st.chunkLeft -= k;
                p += k;
                continue;
            }
            /* Between chunks: the CRLF after a chunk's data, then the size line. */
            const c = d[p++];
            if (c === '\n') {
                if (st.sizeLine !== '') {
                    st.chunkLeft = parseInt(st.sizeLine, 16);
                    if (st.chunkLeft === 0) st.err = new Error('the stream ended');
                }
                st.sizeLine = '';
            } else if (c !== '\r') {
                st.sizeLine += c;
            }
        }
    });
    return st;
}

async function run(pauseUs) {
    const origin = await startOrigin();
    const port = await freePort();
    const admin = await freePort();
    const gw = await startGateway({
        yaml: gatewayYaml({ port, routes: [{ name: 's', path: '/', backends: [{ name: '127.0.0.1', port: origin }] }] }),
        args: ['--access-log', 'off', '--workers', '1', '--admin', `127.0.0.1:${admin}`, '--saturation-pause-us', String(pauseUs)],
        waitPorts: [port, admin],
    });
    const streams = [];
    for (let i = 0; i < STREAMS; i++) streams.push(openStream(port, i));
    await waitFor(() => streams.every(s => s.ids > 0), 15000 * SLOW, 'every stream has an event');
    await sleep(2000);
    const m = await scrape(admin);
    for (const s of streams) s.sock.destroy();
    return { gw, streams, saturated: m.get('ssegate_worker_saturated_rounds_total') };
}

let gw;
test('under saturation the worker pauses and counts it, and every stream still gets every event in order', withLogs(() => [gw], async () => {
    const r = await run(2000);
    gw = r.gw;
    assert.ok(r.saturated > 0, `saturated rounds: ${r.saturated}`);
    const total = r.streams.reduce((a, s) => a + s.ids, 0);
    assert.ok(total > STREAMS * 10, `events received: ${total}`);
    for (const [i, s] of r.streams.entries()) {
        assert.equal(s.err, null, `stream ${i}: ${s.err}`);
        assert.equal(s.gaps, 0, `stream ${i}: ids have gaps`);
    }
    assert.ok(gw.running());
}));

test('--saturation-pause-us 0 only yields, and out-of-range values are refused', withLogs(() => [gw], async () => {
    const r = await run(0);
    gw = r.gw;
    assert.ok(r.saturated > 0, `saturated rounds: ${r.saturated}`);
    for (const [i, s] of r.streams.entries()) assert.equal(s.gaps, 0, `stream ${i}: ids have gaps`);
    for (const v of ['100001', '-1', 'x']) {
        const b = spawnSync(BIN, ['-c', '/nonexistent.yaml', '--saturation-pause-us', v], { encoding: 'utf8' });
        assert.equal(b.status, 2, v);
        assert.match(b.stderr, /--saturation-pause-us: expected a number from 0 to 100000/);
    }
}));

/* 400 WebSockets in the bench's closed loop through one worker; the counters' movement once every one is open. */
async function wsRun(extraArgs) {
    for (const b of ['wsecho', 'wsload']) assert.ok(fs.existsSync(path.join(BENCH, b)), `${b} not built (make all builds it)`);
    const origin = await freePort();
    const echo = spawn(path.join(BENCH, 'wsecho'), ['--port', String(origin)], { stdio: 'ignore' });
    track(() => new Promise(r => (echo.exitCode !== null ? r() : (echo.once('exit', r), echo.kill('SIGKILL')))));
    const port = await freePort();
    const admin = await freePort();
    const g = await startGateway({
        yaml: gatewayYaml({ port, routes: [{ name: 'ws', path: '/', backends: [{ name: '127.0.0.1', port: origin }] }] }),
        args: ['--access-log', 'off', '--workers', '1', '--admin', `127.0.0.1:${admin}`, '--saturation-pause-us', '2000',
            ...extraArgs],
        waitPorts: [port, admin],
    });
    const load = spawn(path.join(BENCH, 'wsload'), ['--port', String(port), '--path', '/ws', '--conns', String(STREAMS),
        '--window', '4', '--warmup', '1', '--duration', String(3 * SLOW)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    load.stdout.on('data', d => (out += d));
    const done = new Promise(r => (load.exitCode !== null ? r() : load.once('exit', r)));
    track(() => (load.kill('SIGKILL'), done));
    /* Once every WebSocket is open the handshakes are over: what the worker sees from then on is relays. */
    await waitFor(async () => (await scrape(admin)).get('ssegate_websockets_active') === STREAMS, 20000 * SLOW,
        `${STREAMS} WebSockets open`);
    const m0 = await scrape(admin);
    await done;
    const m1 = await scrape(admin);
    const r = Object.fromEntries([...out.matchAll(/(\w+)=(\S+)/g)].map(m => [m[1], m[2]]));
    assert.equal(r.connected, String(STREAMS), out);
    assert.equal(r.errors, '0', out);
    assert.ok(Number(r.rate) > 0, out);
    const delta = name => m1.get(name) - m0.get(name);
    return { gw: g, full: delta('ssegate_worker_relay_full_rounds_total'), paused: delta('ssegate_worker_saturated_rounds_total') };
}

test('by default (--saturation-tunnels relay) a full batch of WebSocket relays is flushed at once and never pauses, and every echo comes back', withLogs(() => [gw], async () => {
    const r = await wsRun([]);
    gw = r.gw;
    assert.equal(r.paused, 0, `pauses among relays: ${r.paused}`);
    assert.ok(r.full > 0, `full batches of relays: ${r.full} (the load did not fill a batch)`);
    assert.ok(gw.running());
}));

test('--saturation-tunnels pause: tunnels count like any socket; other values are refused', withLogs(() => [gw], async () => {
    const r = await wsRun(['--saturation-tunnels', 'pause']);
    gw = r.gw;
    assert.ok(r.paused > 0, `pauses among relays: ${r.paused}`);
    assert.equal(r.full, 0, `full batches relayed without a pause: ${r.full}`);
    for (const v of ['', 'x', 'Relay', 'yes']) {
        const b = spawnSync(BIN, ['-c', '/nonexistent.yaml', '--saturation-tunnels', v], { encoding: 'utf8' });
        assert.equal(b.status, 2, v);
        assert.match(b.stderr, /--saturation-tunnels: expected relay or pause/);
    }
    const ok = spawnSync(BIN, ['--check', '-c', '/nonexistent.yaml', '--saturation-tunnels', 'pause'], { encoding: 'utf8' });
    assert.doesNotMatch(ok.stderr, /--saturation-tunnels/);
}));
