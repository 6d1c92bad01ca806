// sse-insert.test.mjs: lines the gateway inserts (heartbeats, drain retry hints) never corrupt the stream:
// a heartbeat sent before the backend's first byte must not leave a leading BOM behind it (the client would
// read "\ufeffdata" as a field name and lose the first event), and a stream without a BOM is relayed intact.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sseBackend } from './lib/backends.mjs';
import { freePort, gatewayYaml, setup, sleep, startGateway, waitFor, withLogs } from './lib/harness.mjs';
import { RawConn } from './lib/rawhttp.mjs';

setup();

/* The body of a chunked response, dechunked. */
function dechunk(buf) {
    const s = buf.toString('latin1');
    const start = s.indexOf('\r\n\r\n') + 4;
    let i = start, out = '';
    for (;;) {
        const e = s.indexOf('\r\n', i);
        if (e < 0) break;
        const size = parseInt(s.slice(i, e), 16);
        if (!(size >= 0) || e + 2 + size > s.length) break;
        out += s.slice(e + 2, e + 2 + size);
        i = e + 2 + size + 2;
        if (size === 0) break;
    }
    return out;
}

let gw;
for (const [name, first, split] of [
    ['a leading BOM after heartbeats is dropped', '\xEF\xBB\xBFdata: one\n\n', false],
    ['a leading BOM split across writes after heartbeats is dropped', '\xEF\xBB\xBFdata: one\n\n', true],
    ['a first byte that only looks like a BOM start is relayed', '\xEFdata: one\n\n', true],
    ['a stream without a BOM after heartbeats is relayed intact', 'data: one\n\n', false],
]) {
    test(`heartbeats before the first byte: ${name}`, withLogs(() => [gw], async () => {
        const be = await sseBackend();
        const port = await freePort();
        gw = await startGateway({
            yaml: gatewayYaml({ port, routes: [{ name: 'e', path: '/e', backends: [{ name: '127.0.0.1', port: be.port }] }] }),
            args: ['--access-log', 'off', '--heartbeat', '300ms'],
            waitPorts: [port],
        });
        const c = new RawConn(port);
        await c.connected;
        c.write('GET /e HTTP/1.1\r\nHost: gw.test\r\n\r\n');
        const st = await be.stream(0);
        await waitFor(() => dechunk(c.buf).includes(':\n'), 3000, 'a heartbeat before any event');
        const bytes = Buffer.from(first, 'latin1');
        if (split) {
            st.res.write(bytes.subarray(0, 1));
            await sleep(400); /* a heartbeat is due here: it must wait for the BOM to be decided */
            st.res.write(bytes.subarray(1));
        } else {
            st.res.write(bytes);
        }
        await waitFor(() => dechunk(c.buf).includes('one\n\n'), 3000, 'the first event');
        const body = dechunk(c.buf);
        const rest = body.slice(body.lastIndexOf(':\n', body.indexOf('one')) + 2);
        const want = first.startsWith('\xEF\xBB\xBF') ? first.slice(3) : first;
        assert.equal(rest.slice(0, want.length), want, `relayed: ${JSON.stringify(body)}`);
        assert.ok(!body.includes('\xEF\xBB\xBF'), 'a BOM followed inserted bytes');
        c.destroy();
        await gw.stop();
    }));
}
