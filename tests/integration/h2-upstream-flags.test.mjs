// h2-upstream-flags.test.mjs: the HTTP/2-to-backend settings an operator sets on the command line. Bad values are
// refused with a message (exit 2); good ones change what the backend sees: sessions per endpoint
// (--h2-upstream-conns), streams per session (--h2-upstream-max-streams), the stream window in our SETTINGS
// (--h2-upstream-window), and whether a refused stream with a body is sent again (--h2-upstream-replay 0: no).
// --h2-upstream-ping and --h2-upstream-ping-timeout are shown at work in h2-upstream-ping.test.mjs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import http from 'node:http';
import http2 from 'node:http2';
import { test } from 'node:test';
import { h2Backend, h2Service } from './lib/h2backends.mjs';
import { BIN, freePort, gatewayYaml, setup, startGateway, withLogs } from './lib/harness.mjs';

setup();

test('bad values for the HTTP/2 upstream flags are refused with a message', () => {
    const bad = [
        ['--h2-upstream-conns', '0', /expected a number from 1 to 1024/],
        ['--h2-upstream-conns', '5000', /expected a number from 1 to 1024/],
        ['--h2-upstream-max-streams', '0', /expected a number from 1 to 1000000/],
        ['--h2-upstream-max-streams', '-3', /expected a number/],
        ['--h2-upstream-window', '1000', /expected a number from 65535 to 16777216/],
        ['--h2-upstream-window', '2147483647', /expected a number from 65535 to 16777216/],
        ['--h2-upstream-replay', 'lots', /expected a number from 0 to 16777216/],
        ['--h2-upstream-replay', '16777217', /expected a number from 0 to 16777216/],
        ['--h2-upstream-ping', '0s', /expected a duration from 100ms to 3600s/],
        ['--h2-upstream-ping', '50ms', /expected a duration from 100ms to 3600s/],
        ['--h2-upstream-ping', 'often', /invalid duration/],
        ['--h2-upstream-ping-timeout', '2h', /expected a duration from 100ms to 3600s/],
        ['--h2-upstream-ping-timeout', '0ms', /expected a duration from 100ms to 3600s/],
    ];
    for (const [flag, v, re] of bad) {
        const r = spawnSync(BIN, ['-c', '/nonexistent.yaml', flag, v], { encoding: 'utf8' });
        assert.equal(r.status, 2, `${flag} ${v}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`${flag}: `), `${flag} ${v}`);
        assert.match(r.stderr, re, `${flag} ${v}`);
    }
    /* Good values pass the parser (then the missing config file is what stops it). */
    for (const [flag, v] of [['--h2-upstream-conns', '1'], ['--h2-upstream-window', '65535'],
        ['--h2-upstream-replay', '0'], ['--h2-upstream-ping', '1h'], ['--h2-upstream-ping-timeout', '100ms']]) {
        const r = spawnSync(BIN, ['-c', '/nonexistent.yaml', flag, v], { encoding: 'utf8' });
        assert.equal(r.status, 1, `${flag} ${v}: ${r.stderr}`);
        assert.doesNotMatch(r.stderr, new RegExp(`${flag}: `));
    }
    assert.match(spawnSync(BIN, ['--help'], { encoding: 'utf8' }).stdout, /--h2-upstream-replay BYTES/);
});

function request(port, path, { method = 'GET', body = null } = {}) {
    return new Promise((resolve, reject) => {
        const headers = body === null ? {} : { 'content-length': Buffer.byteLength(body) };
        const r = http.request({ host: '127.0.0.1', port, path, method, headers, agent: false }, res => {
            let b = '';
            res.setEncoding('utf8');
            res.on('data', d => (b += d));
            res.on('end', () => resolve({ status: res.statusCode, body: b }));
            res.on('error', reject);
        });
        r.on('error', reject);
        r.setTimeout(15000, () => r.destroy(new Error(`${path}: no answer`)));
        r.end(body ?? undefined);
    });
}

async function gateway(be, args) {
    const port = await freePort();
    const gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [{ name: 'main', path: '/', backends: [{ name: 'h2be', port: 8080 }] }],
            extra: h2Service('h2be', be.port),
        }),
        args: ['--workers', '1', '--access-log', 'off', ...args],
        waitPorts: [port],
    });
    return { gw, port };
}

let gws = [];

test('--h2-upstream-conns caps the sessions to an endpoint; --h2-upstream-window is our SETTINGS', withLogs(() => gws, async () => {
    /* One stream per session at the backend: six concurrent streams would take six sessions; two may be opened. */
    const be = await h2Backend({ maxConcurrentStreams: 1 });
    const { gw, port } = await gateway(be, ['--h2-upstream-conns', '2', '--h2-upstream-window', '1000000']);
    gws = [gw];
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => request(port, `/sse/c${i}?n=3&every=30&end=1`)));
    for (const r of rs) {
        assert.equal(r.status, 200);
        assert.equal((r.body.match(/^data: /gm) || []).length, 3);
    }
    assert.equal(be.state.sessions, 2, 'the streams waited for the two sessions');
    const s = [...be.sessions][0];
    assert.equal(s.remoteSettings.initialWindowSize, 1000000);
}));

test('--h2-upstream-max-streams caps streams per session below what the backend allows', withLogs(() => gws, async () => {
    const be = await h2Backend({ maxConcurrentStreams: 100 });
    const { gw, port } = await gateway(be, ['--h2-upstream-max-streams', '2']);
    gws = [gw];
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => request(port, `/sse/m${i}?n=3&every=50&end=1`)));
    for (const r of rs) assert.equal(r.status, 200);
    assert.ok(be.state.maxOpen <= 2, `${be.state.maxOpen} streams open at once on a session`);
    assert.ok(be.state.sessions >= 2, `${be.state.sessions} sessions for 6 concurrent streams, 2 each at most`);
}));

test('--h2-upstream-replay 0: a refused stream whose body had gone is not sent again (503)', withLogs(() => gws, async () => {
    let refuse = 1;
    const be = await h2Backend({
        onStream(stream) {
            if (refuse-- <= 0) return false;
            stream.resume();
            stream.on('end', () => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM));
            return true;
        },
    });
    const { gw, port } = await gateway(be, ['--h2-upstream-replay', '0']);
    gws = [gw];
    const r = await request(port, '/echo/x', { method: 'POST', body: 'small body' });
    assert.equal(r.status, 503, r.body);
    assert.match(r.body, /refused the request without processing it/);
    const r2 = await request(port, '/echo/y', { method: 'POST', body: 'small body' });
    assert.equal(r2.status, 200);
    assert.equal(JSON.parse(r2.body).body, 'small body');
}));
