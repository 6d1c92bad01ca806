// tls.test.mjs: TLS termination: curl --http2 over TLS, ALPN (h2 / http/1.1-only listener), SNI choosing the
// certificate, TLS 1.2+ only, handshake timeout, SSE over h2+TLS, and certificate errors at load time.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { before, test } from 'node:test';
import { Probe, T, connectionError, E, request, responseOn } from '../h2probe/frames.mjs';
import { makeCert, secretFileYaml, secretYaml, tlsGatewayYaml } from '../h2probe/tlsconf.mjs';
import { echoBackend, sseBackend } from './lib/backends.mjs';
import { SLOW, freePort, run, runGateway, setup, startGateway, waitFor, withLogs, writeTemp } from './lib/harness.mjs';

setup();

let gw, echo, sse, port, h1port, certA, certB;


function tlsConnect(p, opts = {}) {
    return new Promise((resolve, reject) => {
        const s = tls.connect({ port: p, host: '127.0.0.1', rejectUnauthorized: false, ...opts }, () => resolve(s));
        s.once('error', reject);
    });
}

before(async () => {
    echo = await echoBackend();
    sse = await sseBackend();
    port = await freePort();
    h1port = await freePort();
    certA = makeCert('a.test');
    certB = makeCert('b.test');
    gw = await startGateway({
        yaml: tlsGatewayYaml({
            listeners: [
                { name: 'https-a', port, hostname: 'a.test', certs: ['cert-a'] },
                { name: 'https-b', port, hostname: 'b.test', certs: ['cert-b'] },
                { name: 'https-h1', port: h1port, certs: ['cert-a'], alpn: 'http/1.1' },
            ],
            routes: [
                { name: 'events', path: '/events', port: sse.port },
                { name: 'echo', path: '/echo', port: echo.port },
            ],
            extra: [secretYaml('cert-a', certA), secretFileYaml('cert-b', certB.crtFile, certB.keyFile)],
        }),
        args: ['--workers', '2'],
        waitPorts: [port, h1port],
    });
});

test('curl --http2 over TLS: HTTP/2 via ALPN, X-Forwarded-Proto https', withLogs(() => [gw], async () => {
    const { code, stdout, stderr } = await run('curl', ['-sS', '-k', '--http2', '--resolve', `a.test:${port}:127.0.0.1`,
        '-w', '\n%{http_version} %{http_code}', `https://a.test:${port}/echo/tls?x=1`]);
    assert.equal(code, 0, stderr);
    const [json, tail] = stdout.split('\n');
    assert.equal(tail, '2 200');
    const j = JSON.parse(json);
    assert.equal(j.path, '/echo/tls?x=1');
    assert.equal(j.host, `a.test:${port}`);
    assert.equal(j.headers['x-forwarded-proto'], 'https');
    await waitFor(() => new RegExp('method=GET path=/echo/tls\\?x=1 status=200').test(gw.stdout), 3000 * SLOW, 'access log');
}));

test('curl --http1.1 over TLS still speaks HTTP/1.1', withLogs(() => [gw], async () => {
    const { stdout } = await run('curl', ['-sS', '-k', '--http1.1', '--resolve', `a.test:${port}:127.0.0.1`,
        '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://a.test:${port}/echo/one`]);
    assert.equal(stdout, '1.1 200');
}));

test('curl --http2 -N: SSE over h2 + TLS, each event as the backend writes it', withLogs(() => [gw], async () => {
    const before = sse.streams.length;
    let child;
    let out = '';
    const p = run('curl', ['-sS', '-k', '-N', '--http2', '--resolve', `a.test:${port}:127.0.0.1`,
        `https://a.test:${port}/events/tls`], { onStdout: (o, c) => ((out = o), (child = c)) });
    const st = await sse.stream(before);
    for (let i = 1; i <= 3; i++) {
        st.send(`secure ${i}`);
        await waitFor(() => out.includes(`data: secure ${i}\n\n`), 3000 * SLOW, `event ${i}`);
    }
    assert.equal(st.headers['x-forwarded-proto'], 'https');
    child.kill('SIGTERM');
    await p;
}));

test('SNI picks the certificate by host name; ALPN offers h2 then http/1.1', withLogs(() => [gw], async () => {
    for (const [name, cn] of [['a.test', 'a.test'], ['b.test', 'b.test']]) {
        const s = await tlsConnect(port, { servername: name, ALPNProtocols: ['h2', 'http/1.1'] });
        assert.equal(s.getPeerCertificate().subject.CN, cn);
        assert.equal(s.alpnProtocol, 'h2');
        s.destroy();
    }
    const s1 = await tlsConnect(port, { servername: 'a.test', ALPNProtocols: ['http/1.1'] });
    assert.equal(s1.alpnProtocol, 'http/1.1');
    s1.destroy();
    const s2 = await tlsConnect(h1port, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'] });
    assert.equal(s2.alpnProtocol, 'http/1.1', 'the http/1.1-only listener never offers h2');
    s2.destroy();
}));

test('TLS 1.2 and 1.3 are accepted, TLS 1.1 is refused', withLogs(() => [gw], async () => {
    for (const v of ['TLSv1.2', 'TLSv1.3']) {
        const s = await tlsConnect(port, { servername: 'a.test', minVersion: v, maxVersion: v });
        assert.equal(s.getProtocol(), v);
        s.destroy();
    }
    await assert.rejects(tlsConnect(port, { servername: 'a.test', minVersion: 'TLSv1', maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0' }));
}));

test('raw HTTP/2 probes over TLS: a request, and GOAWAY PROTOCOL_ERROR for a bad preface', withLogs(() => [gw], async () => {
    const p = await Probe.open(port, { tlsOpts: { servername: 'a.test' } });
    p.headers(1, request('/echo/probe', { authority: 'a.test' }));
    assert.ok(await responseOn(p, 1, 3000 * SLOW));
    p.close();
    const bad = await Probe.open(port, { tlsOpts: { servername: 'a.test' }, preface: false });
    bad.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n'));
    assert.ok(await connectionError(bad, [E.PROTOCOL_ERROR], 3000 * SLOW), 'GOAWAY PROTOCOL_ERROR');
    assert.ok(bad.frames.some(f => f.type === T.GOAWAY));
}));

test('a client that never finishes the handshake is closed by the handshake timeout', { timeout: 30000 * SLOW },
    withLogs(() => [gw], async () => {
        const t0 = Date.now();
        const s = net.connect({ port, host: '127.0.0.1' });
        s.on('error', () => {});
        const closed = new Promise(r => s.on('close', r));
        await closed;
        const ms = Date.now() - t0;
        assert.ok(ms >= 9000 && ms < 15000 * SLOW, `closed after ${ms} ms`);
        /* The gateway goes on serving. */
        const ok = await tlsConnect(port, { servername: 'a.test' });
        ok.destroy();
    }));

test('certificate problems are config errors with file positions', withLogs(() => [gw], async () => {
    const other = makeCert('c.test');
    const mismatched = { crt: certA.crt, key: other.key };
    const cfg = tlsGatewayYaml({
        listeners: [{ name: 'https', port: 8443, certs: ['bad', 'missing-file'] }],
        routes: [{ name: 'echo', path: '/', port: 9 }],
        extra: [secretYaml('bad', mismatched), secretFileYaml('missing-file', '/nonexistent/tls.crt', '/nonexistent/tls.key'),
            'apiVersion: v1\nkind: Secret\nmetadata: {name: notb64}\ntype: kubernetes.io/tls\ndata: {tls.crt: "@@@", tls.key: "@@@"}\n'],
    });
    const file = writeTemp('bad-tls.yaml', cfg);
    const r = await runGateway(['--check', '-c', file]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /bad-tls\.yaml:\d+:\d+: Secret default\/bad: tls\.key does not match the certificate in tls\.crt/);
    assert.match(r.stderr, /bad-tls\.yaml:\d+:\d+: cannot read \/nonexistent\/tls\.crt: No such file or directory/);
    assert.match(r.stderr, /bad-tls\.yaml:\d+:\d+: Secret default\/notb64: data\.tls\.crt is not valid base64/);
    const mode = writeTemp('passthrough.yaml', cfg.replace('mode: Terminate', 'mode: Passthrough'));
    const r2 = await runGateway(['--check', '-c', mode]);
    assert.match(r2.stderr, /passthrough\.yaml:\d+:\d+: listener "https": tls\.mode "Passthrough" not supported/);
}));

test('large request bodies over TLS, HTTP/1.1 and HTTP/2, arrive intact', { timeout: 60000 * SLOW },
    withLogs(() => [gw], async () => {
        const body = writeTemp('upload.bin', Buffer.alloc(6 * 1024 * 1024 + 3, 0x5a));
        const want = (await import('node:crypto')).createHash('sha256').update(Buffer.alloc(6 * 1024 * 1024 + 3, 0x5a)).digest('hex');
        for (const v of ['--http1.1', '--http2']) {
            const { stdout, stderr } = await run('curl', ['-sS', '-k', v, '--resolve', `a.test:${port}:127.0.0.1`,
                '--data-binary', `@${body}`, `https://a.test:${port}/echo/upload`]);
            const j = JSON.parse(stdout || '{}');
            assert.equal(j.bodySha256, want, `${v}: ${stderr}`);
        }
    }));
