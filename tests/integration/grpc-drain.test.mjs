// grpc-drain.test.mjs: long-lived gRPC server streams through ssegate across a SIGTERM drain and a SIGHUP reload.
// Drain: the client connection gets GOAWAY, every open stream ends with grpc-status 14 (UNAVAILABLE) at its drain
// moment after the messages before it, in order; a stream that finishes earlier ends with its own trailers; the
// gateway then exits 0 before the drain deadline. Reload: streams keep flowing on the generation they started with,
// new calls take the new config.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http2 from 'node:http2';
import { test } from 'node:test';
import { Echo, client, grpc, grpcServer, serverStream, unary } from './lib/grpc.mjs';
import { grpcYaml } from './lib/grpcconf.mjs';
import { SLOW, freePort, setup, startGateway, waitFor, withLogs } from './lib/harness.mjs';

setup();

const yamlFor = (port, b) => grpcYaml({
    listeners: [{ name: 'h', port }],
    routes: [{ name: 'echo', rules: `  - backendRefs: [{name: 127.0.0.1, port: ${b.port}}]\n` }],
});

/* sgtest.StreamReq {count, interval_ms} as one length-prefixed message, for a raw HTTP/2 client. */
function streamReq(count, interval) {
    const body = Buffer.from([0x08, count, 0x10, interval]);
    const prefix = Buffer.from([0, 0, 0, 0, body.length]);
    return Buffer.concat([prefix, body]);
}

test('SIGTERM: GOAWAY, open server streams end with UNAVAILABLE, a finishing one with its trailers, exit 0',
    async () => {
        const b = await grpcServer({ name: 'b1' });
        const port = await freePort();
        const gw = await startGateway({
            yaml: yamlFor(port, b),
            args: ['--drain-timeout', '20s', '--drain-spread', '1500ms', '--workers', '1'],
            waitPorts: [port],
        });
        await withLogs(() => [gw], async () => {
            const c = client(Echo, port);
            const calls = [];
            for (let i = 0; i < 8; i++) calls.push(serverStream(c, { count: 0, interval_ms: 40, text: `s${i}` }, { deadlineMs: 60000 }));
            /* One that ends on its own soon after the drain begins (well before any drain moment of 1.5 s spread
             * could be guaranteed, so it may also be ended by the drain: either way it ends cleanly). */
            const finite = serverStream(c, { count: 3, interval_ms: 30, text: 'f' }, { deadlineMs: 60000 });
            /* A raw HTTP/2 client on its own connection sees the GOAWAY frame itself. */
            const s = http2.connect(`http://127.0.0.1:${port}`);
            s.on('error', () => {});
            let goaway = false;
            s.on('goaway', () => (goaway = true));
            const rq = s.request({ ':method': 'POST', ':path': '/sgtest.Echo/ServerStream', 'content-type': 'application/grpc', te: 'trailers' });
            let rawTrailers = null;
            let rawBytes = 0;
            rq.on('data', d => (rawBytes += d.length));
            rq.on('trailers', t => (rawTrailers = t));
            rq.end(streamReq(0, 40));
            await waitFor(() => calls.every(x => x.msgs.length >= 3) && rawBytes > 0, 5000 * SLOW, 'every stream flowing');

            gw.stopping = true; /* an exit of its own is expected now */
            gw.child.kill('SIGTERM');
            const ended = await Promise.all(calls.map(x => x.done));
            for (const x of ended) {
                assert.equal(x.status.code, grpc.status.UNAVAILABLE, x.status.details);
                assert.match(x.status.details, /ssegate: the gateway is shutting down/);
                assert.ok(x.msgs.length >= 3);
                x.msgs.forEach((m, i) => assert.equal(m.n, i + 1));
            }
            const f = await finite.done;
            assert.ok(f.status.code === grpc.status.OK || f.status.code === grpc.status.UNAVAILABLE, f.status.details);
            if (f.status.code === grpc.status.OK) assert.equal(f.msgs.length, 3);
            await waitFor(() => rawTrailers !== null, 5000 * SLOW, 'the raw stream\'s trailers');
            assert.equal(rawTrailers['grpc-status'], '14');
            assert.ok(goaway, 'the client connection got GOAWAY');
            s.destroy();
            const { code } = await gw.exited;
            assert.equal(code, 0, gw.stderr);
        })();
    });

test('SIGHUP reload while server streams run: they go on to their own end; new calls take the new route',
    async () => {
        const b1 = await grpcServer({ name: 'b1' });
        const b2 = await grpcServer({ name: 'b2' });
        const port = await freePort();
        const gw = await startGateway({ yaml: yamlFor(port, b1), waitPorts: [port] });
        await withLogs(() => [gw], async () => {
            const c = client(Echo, port);
            const calls = [];
            for (let i = 0; i < 5; i++) calls.push(serverStream(c, { count: 40, interval_ms: 25, text: `r${i}` }, { deadlineMs: 60000 }));
            await waitFor(() => calls.every(x => x.msgs.length >= 2), 5000 * SLOW, 'streams flowing');
            fs.writeFileSync(gw.config, yamlFor(port, b2));
            gw.child.kill('SIGHUP');
            await waitFor(async () => (await unary(c, 'Unary', { text: 'after' })).res?.server === 'b2', 5000 * SLOW,
                          'a new call on the new config');
            for (const x of await Promise.all(calls.map(y => y.done))) {
                assert.equal(x.status.code, grpc.status.OK, x.status.details);
                assert.equal(x.msgs.length, 40);
                assert.ok(x.msgs.every(m => m.server === 'b1'));
                assert.equal(x.status.metadata.get('x-sent')[0], '40');
            }
            assert.ok(gw.running());
        })();
    });
