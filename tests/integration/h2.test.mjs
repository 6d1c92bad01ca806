// h2.test.mjs: HTTP/2 cleartext with prior knowledge (h2c): curl, nghttp, h2load and Node's http2 client
// against the real binary: SETTINGS, SSE as DATA frames per upstream write, 200 streams on one connection,
// request bodies, headers and error statuses the same as on HTTP/1.1.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import { before, test } from 'node:test';
import { echoBackend, pattern, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, gatewayYaml, run, setup, sleep, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';

setup();

let gw, echo, sse, port, refusedPort;

before(async () => {
    echo = await echoBackend();
    sse = await sseBackend();
    port = await freePort();
    refusedPort = await freePort();
    gw = await startGateway({
        yaml: gatewayYaml({
            port,
            routes: [
                { name: 'events', path: '/events', backends: [{ name: '127.0.0.1', port: sse.port }] },
                { name: 'echo', path: '/echo', backends: [{ name: '127.0.0.1', port: echo.port }] },
                { name: 'dead', path: '/dead', backends: [{ name: '127.0.0.1', port: refusedPort }] },
            ],
        }),
        /* h2load below is a load generator: 10,000 requests from one address as fast as it can, far past the
         * per-address budget that protects backends from one client (hostile-h2-reset.test.mjs tests it). */
        args: ['--workers', '2', '--client-rate', '0'],
        waitPorts: [port],
    });
});


function connect() {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    return session;
}

/* One request on a session; resolves {status, headers, body}. */
function h2request(session, headers, body) {
    return new Promise((resolve, reject) => {
        const req = session.request(headers, { endStream: body === undefined });
        const parts = [];
        let head;
        req.on('response', h => (head = h));
        req.on('data', d => parts.push(d));
        req.on('end', () => resolve({ status: head[':status'], headers: head, body: Buffer.concat(parts) }));
        req.on('error', reject);
        if (body !== undefined) req.end(body);
    });
}

test('curl --http2-prior-knowledge -N relays SSE events as the backend writes them', withLogs(() => [gw], async () => {
    const before = sse.streams.length;
    let child;
    const got = [];
    const p = run('curl', ['-sS', '-N', '--http2-prior-knowledge', `http://127.0.0.1:${port}/events/a`], {
        onStdout: (out, c) => {
            child = c;
            got.push(performance.now());
        },
    });
    const st = await sse.stream(before);
    for (let i = 1; i <= 3; i++) {
        const sentAt = performance.now();
        st.send(`tick ${i}`);
        await waitFor(() => got.length >= i, 3000 * SLOW, `event ${i} through curl`);
        assert.ok(got[i - 1] - sentAt < 500 * SLOW, `event ${i} took ${got[i - 1] - sentAt} ms`);
    }
    child.kill('SIGTERM');
    const { stdout } = await p;
    assert.match(stdout, /id: 1\ndata: tick 1\n\nid: 2\ndata: tick 2\n\nid: 3\ndata: tick 3\n\n/);
    assert.equal(st.headers['x-forwarded-proto'], 'http');
}));

test('curl --http2-prior-knowledge: ordinary request, X-Forwarded-* and Host from :authority', withLogs(() => [gw], async () => {
    const { code, stdout } = await run('curl', ['-sS', '--http2-prior-knowledge', '-H', 'x-forwarded-for: 10.9.8.7',
        '-w', '\n%{http_version} %{http_code}', `http://127.0.0.1:${port}/echo/hello?q=1`]);
    assert.equal(code, 0);
    const [json, tail] = stdout.split('\n');
    assert.equal(tail, '2 200');
    const j = JSON.parse(json);
    assert.equal(j.path, '/echo/hello?q=1');
    assert.equal(j.host, `127.0.0.1:${port}`);
    assert.equal(j.headers['x-forwarded-for'], '10.9.8.7, 127.0.0.1');
    assert.equal(j.headers['x-forwarded-proto'], 'http');
    assert.equal(j.headers['x-forwarded-host'], `127.0.0.1:${port}`);
    assert.match(j.headers['x-request-id'], /^[0-9a-f]{24}$/);
}));

test('nghttp -v: our SETTINGS, and one DATA frame per backend write', withLogs(() => [gw], async () => {
    const before = sse.streams.length;
    let out = '';
    let child;
    const p = run('nghttp', ['-v', '-n', `http://127.0.0.1:${port}/events/ng`], {
        onStdout: (o, c) => {
            out = o;
            child = c;
        },
    });
    const st = await sse.stream(before);
    await waitFor(() => /recv HEADERS frame/.test(out), 3000 * SLOW, 'response HEADERS');
    const dataFrames = () => (out.match(/recv DATA frame <length=(\d+)/g) || []).length;
    for (let i = 1; i <= 3; i++) {
        st.send(`n${i}`);
        await waitFor(() => dataFrames() >= i, 3000 * SLOW, `DATA frame ${i}`);
        await sleep(50);
        assert.equal(dataFrames(), i, 'exactly one DATA frame per write');
    }
    const len = `id: 1\ndata: n1\n\n`.length;
    assert.match(out, new RegExp(`recv DATA frame <length=${len}, flags=0x00, stream_id=13>`));
    assert.match(out, /SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):256/);
    assert.match(out, /SETTINGS_INITIAL_WINDOW_SIZE\(0x04\):262144/);
    assert.match(out, /SETTINGS_ENABLE_PUSH\(0x02\):0/);
    st.end();
    await waitFor(() => /END_STREAM/.test(out.split('recv DATA').slice(-1)[0] || ''), 3000 * SLOW, 'END_STREAM');
    child.kill('SIGTERM');
    await p;
}));

test('one h2 connection, 200 concurrent SSE streams, every event in order on each', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const N = 200;
        const EVENTS = 10;
        const session = connect();
        const before = sse.streams.length;
        const streams = [];
        for (let i = 0; i < N; i++) {
            const req = session.request({ ':path': `/events/many?c=${i}`, accept: 'text/event-stream' });
            const s = { req, text: '', status: 0 };
            req.setEncoding('utf8');
            req.on('response', h => (s.status = h[':status']));
            req.on('data', d => (s.text += d));
            req.on('error', e => (s.error = e));
            streams.push(s);
        }
        await waitFor(() => sse.streams.length >= before + N, 10000 * SLOW, `${N} streams at the backend`);
        const backendStreams = sse.streams.slice(before, before + N);
        for (let e = 1; e <= EVENTS; e++) {
            for (const st of backendStreams) st.send(`${st.url} #${e}`);
            await sleep(20);
        }
        await waitFor(() => streams.every(s => (s.text.match(/\n\n/g) || []).length >= EVENTS), 10000 * SLOW,
            'every event on every stream');
        for (const s of streams) {
            assert.equal(s.status, 200);
            const ids = [...s.text.matchAll(/id: (\d+)\n/g)].map(m => Number(m[1]));
            assert.deepEqual(ids, Array.from({ length: EVENTS }, (_, k) => k + 1));
        }
        /* Each stream went to its own upstream request, all on one client connection. */
        const urls = new Set(backendStreams.map(s => s.url));
        assert.equal(urls.size, N);
        for (const st of backendStreams) st.end();
        session.close();
    }));

test('request bodies stream upstream: with and without content-length, large and small', withLogs(() => [gw], async () => {
    const session = connect();
    const big = pattern(3 * 1024 * 1024 + 17);
    const r1 = await h2request(session, { ':method': 'POST', ':path': '/echo/up', 'content-length': String(big.length) }, big);
    assert.equal(r1.status, 200);
    const j1 = JSON.parse(r1.body);
    assert.equal(j1.bodyLength, big.length);
    assert.equal(j1.bodySha256, crypto.createHash('sha256').update(big).digest('hex'));
    assert.equal(j1.headers['content-length'], String(big.length));
    /* Unknown length: chunked upstream. */
    const r2 = await h2request(session, { ':method': 'PUT', ':path': '/echo/chunked' }, Buffer.from('hello h2 body'));
    const j2 = JSON.parse(r2.body);
    assert.equal(j2.body, 'hello h2 body');
    assert.equal(j2.headers['transfer-encoding'], 'chunked');
    /* Cookie crumbs are joined for the HTTP/1.1 backend. */
    const r3 = await h2request(session, { ':path': '/echo/c', cookie: ['a=1', 'b=2'], 'last-event-id': '41' });
    const j3 = JSON.parse(r3.body);
    assert.equal(j3.headers.cookie, 'a=1; b=2');
    assert.equal(j3.headers['last-event-id'], '41');
    session.close();
}));

test('error statuses are the same as on HTTP/1.1: 404 no route, 502 refused, HEAD', withLogs(() => [gw], async () => {
    const session = connect();
    const r1 = await h2request(session, { ':path': '/nowhere' });
    assert.equal(r1.status, 404);
    assert.equal(r1.body.toString(), 'ssegate: no route\n');
    const r2 = await h2request(session, { ':path': '/dead/x' });
    assert.equal(r2.status, 502);
    const r3 = await h2request(session, { ':method': 'HEAD', ':path': '/echo/head' });
    assert.equal(r3.status, 200);
    assert.equal(r3.body.length, 0);
    session.close();
}));

test('access log line for an h2 request', withLogs(() => [gw], async () => {
    const session = connect();
    await h2request(session, { ':path': '/echo/logged-h2' });
    session.close();
    await waitFor(() => /proto=HTTP\/2 method=GET path=\/echo\/logged-h2 status=200/.test(gw.stdout), 3000 * SLOW, "access log line with proto=HTTP/2");
}));

test('h2load -n 10000 ordinary requests with bodies, all answered', { timeout: 120000 * SLOW },
    withLogs(() => [gw], async () => {
        const bodyFile = writeTemp('h2load-body', 'x'.repeat(1000));
        const n = 10000;
        const { stdout } = await run('h2load', ['-n', String(n), '-c', '10', '-m', '10', '-d', bodyFile,
            `http://127.0.0.1:${port}/echo/load`], { timeout: 110000 * SLOW });
        assert.match(stdout, new RegExp(`requests: ${n} total, ${n} started, ${n} done, ${n} succeeded, 0 failed, 0 errored`));
        assert.match(stdout, new RegExp(`status codes: ${n} 2xx`));
        assert.ok(fs.existsSync(bodyFile));
    }));

test('SIGTERM drain over HTTP/2: GOAWAY, the SSE stream goes on, then ends at an event boundary', { timeout: 30000 * SLOW },
    withLogs(() => [gw], async () => {
        const dport = await freePort();
        const dsse = await sseBackend();
        const dgw = await startGateway({
            yaml: gatewayYaml({ port: dport, routes: [{ name: 'ev', path: '/', backends: [{ name: '127.0.0.1', port: dsse.port }] }] }),
            args: ['--workers', '1', '--drain-timeout', '3s', '--drain-spread', '2s', '--access-log', 'off'],
            waitPorts: [dport],
        });
        const session = http2.connect(`http://127.0.0.1:${dport}`);
        session.on('error', () => {});
        let goaway = null;
        session.on('goaway', (code, last) => (goaway = { code, last }));
        const req = session.request({ ':path': '/drain' });
        let text = '';
        let ended = false;
        req.setEncoding('utf8');
        req.on('data', d => (text += d));
        req.on('end', () => (ended = true));
        req.on('error', () => {});
        const st = await dsse.stream(0);
        st.send('one');
        await waitFor(() => text.includes('data: one'), 3000 * SLOW, 'first event');
        dgw.stopping = true; /* the harness must not report this exit as a crash */
        dgw.child.kill('SIGTERM');
        await waitFor(() => goaway, 3000 * SLOW, 'GOAWAY');
        assert.equal(goaway.code, 0);
        st.send('two');
        await waitFor(() => text.includes('data: two'), 3000 * SLOW, 'an event after GOAWAY');
        const { code } = await dgw.exited;
        assert.equal(code, 0);
        assert.ok(ended || req.destroyed, 'stream ended');
        assert.ok(text.endsWith('\n\n'), 'ended at an event boundary');
        session.destroy();
    }));

test('flow control: a client that stops reading holds the upstream back (bounded memory), then gets every byte',
    { timeout: 60000 * SLOW }, withLogs(() => [gw], async () => {
        const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${gw.child.pid}/status`, 'utf8'))[1]) * 1024;
        const session = connect();
        const n = 64 * 1024 * 1024;
        const req = session.request({ ':path': `/echo/big?bytes=${n}` });
        let got = 0;
        const hash = crypto.createHash('sha256');
        req.on('data', d => {
            got += d.length;
            hash.update(d);
        });
        await new Promise(r => req.once('response', r));
        const before = rss();
        req.pause();
        await sleep(1500 * SLOW);
        const grown = rss() - before;
        assert.ok(got < n / 4, `client took ${got} bytes while paused`);
        assert.ok(grown < 16 * 1024 * 1024, `gateway RSS grew ${grown} bytes while the client did not read`);
        req.resume();
        await new Promise(r => req.on('end', r));
        assert.equal(got, n);
        assert.equal(hash.digest('hex'), crypto.createHash('sha256').update(pattern(n)).digest('hex'));
        session.close();
    }));

test('CONNECT gets 501 over HTTP/2 as over HTTP/1.1, and the backend sees nothing', withLogs(() => [gw], async () => {
    const from = echo.requests.length;
    const session = connect();
    const r = await h2request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' });
    session.close();
    assert.equal(r.status, 501);
    assert.equal(r.body.toString(), 'ssegate: CONNECT not implemented\n');
    assert.equal(echo.requests.length, from);
}));
