// grpc.mjs: real gRPC servers and clients (@grpc/grpc-js) for the tests: the sgtest.Echo and sgtest.Other services
// of fixtures/grpc/test.proto, and grpc.health.v1.Health, with helpers for each call type.
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { repoRoot, track } from './harness.mjs';

const dir = path.join(repoRoot, 'tests/integration/fixtures/grpc');
const opts = { keepCase: true, longs: Number, enums: String, defaults: true };
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync([path.join(dir, 'test.proto'), path.join(dir, 'health.proto')], opts));
export const { Echo, Other } = pkg.sgtest;
export const Health = pkg.grpc.health.v1.Health;
export { grpc };

/* The request metadata a backend reports back: the keys starting with x- (JSON). */
function seen(call) {
    const m = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) if (k.startsWith('x-')) m[k] = String(v);
    return JSON.stringify(m);
}

/*
 * A gRPC server on host:port (default 127.0.0.1, any port; h2c, or TLS with {cert, key}) serving Echo, Other and Health. name: reported in each
 * reply's `server`. health: a Map service -> status ('' for the server) the Check answers, mutable. Returns
 * {port, name, server, streams: open ServerStream calls, calls: count per method, health, close()}.
 */
export async function grpcServer({ name = 'b1', tls = null, health = new Map([['', 'SERVING']]), host = '127.0.0.1', port = 0 } = {}) {
    const server = new grpc.Server();
    const st = { name, health, streams: new Set(), calls: {}, server, sent: 0, received: 0, release: null };
    const count = m => (st.calls[m] = (st.calls[m] || 0) + 1);
    server.addService(Echo.service, {
        Unary(call, cb) {
            count('Unary');
            const md = new grpc.Metadata();
            md.set('x-server', name);
            call.sendMetadata(md);
            if (call.request.text === 'fail') {
                const tr = new grpc.Metadata();
                tr.set('x-why', 'asked-to-fail');
                cb({ code: grpc.status.FAILED_PRECONDITION, details: 'failing as asked', metadata: tr });
                return;
            }
            const trailer = new grpc.Metadata();
            trailer.set('x-trailer', `t-${call.request.text}`);
            trailer.set('x-bin-bin', Buffer.from([0, 1, 2, 255]));
            const reply = { text: call.request.text, n: call.request.n + 1, server: name, meta: seen(call) };
            if (call.request.n < 0) setTimeout(() => cb(null, reply, trailer), -call.request.n);
            else cb(null, reply, trailer);
        },
        ServerStream(call) {
            count('ServerStream');
            st.streams.add(call);
            const { count: n, interval_ms: every, text, size } = call.request;
            let i = 0;
            let timer = null;
            const pad = size > 0 ? 'x'.repeat(size) : '';
            const done = () => {
                clearInterval(timer);
                st.streams.delete(call);
            };
            call.on('cancelled', done);
            call.on('error', done);
            const tick = () => {
                if (n > 0 && i >= n) {
                    done();
                    const tr = new grpc.Metadata();
                    tr.set('x-sent', String(i));
                    call.end(tr);
                    return;
                }
                i++;
                call.write({ text: pad || text, n: i, server: name });
            };
            if (every > 0) timer = setInterval(tick, every);
            else {
                /* As fast as the flow control lets it go (the benchmark's mode). */
                const pump = () => {
                    while (n === 0 || i < n) {
                        if (call.cancelled) return;
                        i++;
                        st.sent++;
                        if (!call.write({ text: pad || text, n: i, server: name })) return call.once('drain', pump);
                    }
                    tick();
                };
                pump();
            }
        },
        ClientStream(call, cb) {
            count('ClientStream');
            let sum = 0;
            let texts = [];
            call.on('data', m => {
                sum += m.n;
                st.received++;
                /* 'hold': stop reading until the test calls st.release() (request-side back-pressure). */
                if (m.text.startsWith('hold') && texts.length === 0) {
                    call.pause();
                    st.release = () => call.resume();
                }
                texts.push(m.text.slice(0, 8));
            });
            call.on('end', () => cb(null, { text: texts.join(','), n: sum, server: name }));
        },
        Bidi(call) {
            count('Bidi');
            call.on('data', m => call.write({ text: `echo:${m.text}`, n: m.n, server: name }));
            call.on('end', () => {
                const tr = new grpc.Metadata();
                tr.set('x-bidi', 'done');
                call.end(tr);
            });
        },
    });
    server.addService(Other.service, {
        Unary(call, cb) {
            count('Other.Unary');
            cb(null, { text: `other:${call.request.text}`, server: name, meta: seen(call) });
        },
        ListThings(call, cb) {
            count('Other.ListThings');
            cb(null, { text: `list:${call.request.text}`, server: name, meta: seen(call) });
        },
    });
    server.addService(Health.service, {
        Check(call, cb) {
            count('Health.Check');
            const s = st.health.get(call.request.service);
            if (s === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
            else cb(null, { status: s });
        },
    });
    const creds = tls
        ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) }], false)
        : grpc.ServerCredentials.createInsecure();
    st.port = await new Promise((resolve, reject) =>
        server.bindAsync(`${host}:${port}`, creds, (err, port) => (err ? reject(err) : resolve(port))));
    st.close = () =>
        new Promise(resolve => {
            for (const c of st.streams) c.destroy?.();
            server.tryShutdown(() => resolve());
            setTimeout(() => {
                server.forceShutdown();
                resolve();
            }, 2000).unref();
        });
    track(st.close);
    return st;
}

/*
 * A client of `Service` through the gateway at 127.0.0.1:port (h2c), or TLS with {ca, servername}.
 * authority: the :authority to send (default host:port).
 */
export function client(Service, port, { tls = null, authority = null, options = {} } = {}) {
    const creds = tls ? grpc.credentials.createSsl(Buffer.from(tls.ca)) : grpc.credentials.createInsecure();
    const o = { 'grpc.enable_retries': 0, ...options };
    if (tls && tls.servername) o['grpc.ssl_target_name_override'] = tls.servername;
    if (authority) o['grpc.default_authority'] = authority;
    const c = new Service(`127.0.0.1:${port}`, creds, o);
    track(() => c.close());
    return c;
}

/* A unary call; resolves {err, res, headers, trailers} (never rejects). */
export function unary(c, method, req, { metadata = new grpc.Metadata(), deadlineMs = 10000 } = {}) {
    return new Promise(resolve => {
        const out = {};
        const call = c[method](req, metadata, { deadline: Date.now() + deadlineMs }, (err, res) => {
            out.err = err;
            out.res = res;
        });
        call.on('metadata', md => (out.headers = md.getMap()));
        call.on('status', s => {
            out.status = s;
            out.trailers = s.metadata.getMap();
            /* The callback has run by now (grpc-js calls it before the status event). */
            setImmediate(() => resolve(out));
        });
    });
}

/* Collects a server stream: resolves {msgs, err, status}. onMsg(msg, call) sees each message as it comes. */
export function serverStream(c, req, { metadata = new grpc.Metadata(), deadlineMs = 30000, onMsg } = {}) {
    const call = c.ServerStream(req, metadata, { deadline: Date.now() + deadlineMs });
    const out = { msgs: [], call };
    out.done = new Promise(resolve => {
        call.on('data', m => {
            out.msgs.push(m);
            onMsg?.(m, call);
        });
        call.on('error', e => (out.err = e));
        call.on('status', s => {
            out.status = s;
            setImmediate(() => resolve(out));
        });
    });
    return out;
}
