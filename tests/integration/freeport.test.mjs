// freeport.test.mjs: the harness's freePort() gives a port nothing listens on at any local address, as the tests
// bind it (a Gateway without addresses listens on 0.0.0.0; backends on 127.0.0.1), never one free on 127.0.0.1 alone
// but held on another address (which flaked under concurrent runs); never the same port twice in one process; and
// with a host, a port free on that host, as before.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { freePort, setup, track } from './lib/harness.mjs';

setup();

function listen(port, host) {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen({ port, host }, () => resolve(s));
    });
}

const close = s => new Promise(r => s.close(r));

test('freePort: never a port held on another loopback address, always one that binds on 0.0.0.0, never twice',
    { timeout: 60000 }, async () => {
        /* ports held on 127.0.0.2 only: free on 127.0.0.1, taken for a 0.0.0.0 listener */
        const held = [];
        track(() => Promise.all(held.map(close)));
        for (let i = 0; i < 200; i++) held.push(await listen(0, '127.0.0.2'));
        const heldPorts = new Set(held.map(s => s.address().port));
        const got = new Set();
        for (let i = 0; i < 300; i++) {
            const p = await freePort();
            assert.ok(!heldPorts.has(p), `freePort gave ${p}, which is held on 127.0.0.2`);
            assert.ok(!got.has(p), `freePort gave ${p} twice`);
            got.add(p);
            await close(await listen(p, '0.0.0.0'));
            await close(await listen(p, '127.0.0.1'));
        }
        /* with a host: free on that host (here a port held on 127.0.0.2 may come back: only 127.0.0.1 is asked) */
        const q = await freePort('127.0.0.1');
        await close(await listen(q, '127.0.0.1'));
    });
