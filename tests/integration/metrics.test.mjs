// metrics.test.mjs: GET /metrics is valid Prometheus text (a strict parser), exposes every metric docs/operations.md lists
// with its type and labels, and the counters move exactly as traffic drives them.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, repoRoot, setup, sleep, startGateway, withLogs } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';
import { httpGet, openTimedSse, parseProm, scrape } from './lib/prod-util.mjs';

setup();

/* The metric table of docs/operations.md: [{name, type, labels: [..]}]. */
function documented() {
    const md = fs.readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
    const out = [];
    for (const m of md.matchAll(/^\| `(ssegate_[a-z0-9_]+)` \| (counter|gauge|histogram|summary) \| ([^|]*)\|/gm)) {
        out.push({ name: m[1], type: m[2], labels: m[3].trim() ? m[3].split(',').map(s => s.trim()) : [] });
    }
    return out;
}

function checkDocumented(m, needSeries = false) {
    const docs = documented();
    assert.ok(docs.length >= 15, 'docs/operations.md metric table not found');
    for (const d of docs) {
        const f = m.families.get(d.name);
        assert.ok(f, `documented metric ${d.name} is not exposed`);
        assert.equal(f.type, d.type, `${d.name} type`);
        assert.ok(f.help, `${d.name} has no HELP`);
        if (needSeries) assert.ok(f.samples.length, `${d.name} has no series`);
        for (const s of f.samples) {
            for (const l of d.labels) assert.ok(l in s.labels, `${s.name} lacks the documented label ${l}`);
        }
    }
}

test('the Prometheus parser rejects what a scraper would', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 3\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 0.5\nh_count 2\n';
    assert.equal(parseProm(ok).samples.length, 5);
    const bad = {
        'no TYPE': 'b 1\n',
        'no newline at end': '# TYPE a_total counter\na_total 1',
        'not cumulative': '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 0\nh_count 1\n',
        'no +Inf': '# TYPE h histogram\nh_bucket{le="1"} 2\nh_sum 0\nh_count 2\n',
        'count mismatch': '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 0\nh_count 3\n',
        'no sum': '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\n',
        'duplicate series': '# TYPE g gauge\ng{a="1"} 1\ng{a="1"} 2\n',
        'bad label': '# TYPE g gauge\ng{a=1} 1\n',
        'bad value': '# TYPE g gauge\ng 1,5\n',
        'interleaved': '# TYPE g gauge\n# TYPE f gauge\ng 1\nf 1\ng{a="2"} 1\n',
        'TYPE after samples': '# TYPE g gauge\ng 1\n# TYPE g gauge\n',
        'negative counter': '# TYPE c_total counter\nc_total -1\n',
    };
    for (const [what, text] of Object.entries(bad)) assert.throws(() => parseProm(text), undefined, what);
});

let gw;
test(
    '/metrics: valid text, every documented metric, counters move with traffic',
    { timeout: 30000 * SLOW },
    withLogs(() => [gw], async () => {
        const echo = await echoBackend();
        const sse = await sseBackend();
        const dead = await freePort();
        const port = await freePort();
        const admin = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({
                port,
                routes: [
                    { name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: echo.port }] },
                    { name: 'sse', path: '/sse', backends: [{ name: '127.0.0.1', port: sse.port }] },
                    { name: 'dead', path: '/dead', backends: [{ name: '127.0.0.1', port: dead }] },
                ],
            }),
            args: ['--access-log', 'off', '--workers', '2', '--admin', `127.0.0.1:${admin}`],
            waitPorts: [port, admin],
        });
        await sleep(100);
        const m0 = await scrape(admin);
        assert.match(m0.contentType || '', /^text\/plain; version=0\.0\.4/);
        checkDocumented(m0);
        const H1 = { protocol: 'http/1.1' };
        const get = (m, n, l) => m.get(n, l) ?? 0;

        /* 5 connections x 2 keep-alive requests to /echo. */
        let received = 0;
        let sent = 0;
        for (let i = 0; i < 5; i++) {
            const c = new RawConn(port);
            await c.connected;
            for (let j = 0; j < 2; j++) {
                const req = `GET /echo/${i}/${j} HTTP/1.1\r\nHost: gw.test\r\n\r\n`;
                sent += req.length;
                const before = c.buf.length;
                c.write(req);
                const r = await c.response(3000 * SLOW);
                assert.equal(r.status, 200);
                received += r.used + before;
            }
            c.destroy();
        }
        /* one 503 from the backend; one refused connect (the client gets 502, no upstream head exists) */
        const r503 = await httpGet(port, '/echo/x?status=503');
        assert.equal(r503.status, 503);
        const m1 = await scrape(admin);
        const r502 = await httpGet(port, '/dead/x');
        assert.equal(r502.status, 502);
        await sleep(50);
        const m2 = await scrape(admin);

        assert.equal(get(m1, 'ssegate_connections_total', H1) - get(m0, 'ssegate_connections_total', H1), 6, 'connections_total');
        assert.equal(get(m1, 'ssegate_streams_total', H1) - get(m0, 'ssegate_streams_total', H1), 11, 'streams_total');
        assert.equal(get(m1, 'ssegate_route_requests_total', { route: 'default/echo' }) - get(m0, 'ssegate_route_requests_total', { route: 'default/echo' }), 11);
        assert.equal(get(m1, 'ssegate_upstream_responses_total', { class: '2xx' }) - get(m0, 'ssegate_upstream_responses_total', { class: '2xx' }), 10, 'upstream 2xx');
        assert.equal(get(m1, 'ssegate_upstream_responses_total', { class: '5xx' }) - get(m0, 'ssegate_upstream_responses_total', { class: '5xx' }), 1, 'upstream 5xx after a backend 503');
        assert.equal(get(m1, 'ssegate_request_duration_seconds_count') - get(m0, 'ssegate_request_duration_seconds_count'), 11, 'request_duration count');
        assert.equal(get(m1, 'ssegate_time_to_first_byte_seconds_count') - get(m0, 'ssegate_time_to_first_byte_seconds_count'), 11, 'ttfb count');
        assert.ok(get(m1, 'ssegate_bytes_sent_total') - get(m0, 'ssegate_bytes_sent_total') >= received, 'bytes_sent_total grew less than the clients received');
        assert.ok(get(m1, 'ssegate_bytes_received_total') - get(m0, 'ssegate_bytes_received_total') >= sent, 'bytes_received_total grew less than the clients sent');
        /* the 502 of a refused connect is ours, not an upstream head */
        assert.equal(get(m2, 'ssegate_upstream_responses_total', { class: '5xx' }), get(m1, 'ssegate_upstream_responses_total', { class: '5xx' }), 'a refused connect was counted as an upstream 5xx');
        assert.equal(get(m2, 'ssegate_upstream_connect_errors_total') - get(m1, 'ssegate_upstream_connect_errors_total'), 1, 'upstream_connect_errors_total after a refused connect');
        assert.equal(get(m2, 'ssegate_route_requests_total', { route: 'default/dead' }), 1);

        /* SSE: 3 streams x 7 events. */
        const hs = [0, 1, 2].map(i => openTimedSse(port, `/sse/${i}`));
        await Promise.all(hs.map(h => h.head));
        await sse.stream(2);
        const streams = sse.streams.slice(-3);
        for (let k = 0; k < 7; k++) for (const st of streams) st.send(`e${k}`);
        const deadline = Date.now() + 3000 * SLOW;
        while (hs.some(h => h.events.length < 7) && Date.now() < deadline) await sleep(10);
        const m3 = await scrape(admin);
        const R = { route: 'default/sse' };
        assert.equal(get(m3, 'ssegate_sse_events_total', R) - get(m2, 'ssegate_sse_events_total', R), 21, 'sse_events_total');
        assert.equal(get(m3, 'ssegate_sse_streams_total', R) - get(m2, 'ssegate_sse_streams_total', R), 3, 'sse_streams_total');
        assert.equal(get(m3, 'ssegate_sse_streams_active', R), 3, 'sse_streams_active with 3 open');
        assert.equal(get(m3, 'ssegate_streams_active', H1), 3, 'streams_active with 3 SSE streams open');
        assert.equal(get(m3, 'ssegate_connections_active', H1), 3, 'connections_active');
        assert.equal(get(m3, 'ssegate_sse_events_total', { route: 'default/echo' }), 0, 'events counted on a non-SSE route');
        const sseBytes = hs.reduce((a, h) => a + Buffer.byteLength(h.text), 0);
        assert.ok(get(m3, 'ssegate_bytes_sent_total') - get(m2, 'ssegate_bytes_sent_total') >= sseBytes);
        for (const h of hs) h.close();
        let m4;
        const d2 = Date.now() + 3000 * SLOW;
        do {
            await sleep(50);
            m4 = await scrape(admin);
        } while ((get(m4, 'ssegate_sse_streams_active', R) !== 0 || get(m4, 'ssegate_connections_active', H1) !== 0) && Date.now() < d2);
        assert.equal(get(m4, 'ssegate_sse_streams_active', R), 0, 'sse_streams_active after the clients left');
        assert.equal(get(m4, 'ssegate_connections_active', H1), 0, 'connections_active after the clients left');
        assert.equal(get(m4, 'ssegate_streams_active', H1), 0);
        assert.equal(get(m4, 'ssegate_draining'), 0);
        assert.equal(get(m4, 'ssegate_config_generation'), 1);
        /* now that every route has served, each documented family has its series, with the documented labels */
        checkDocumented(m4, true);
    }),
);
