// h2backends.mjs: a Node HTTP/2 backend (h2c with prior knowledge, or h2 over TLS with ALPN) for the upstream
// HTTP/2 tests. It counts its sessions and the most streams any session had open at once.
//   /sse?n=N[&end=1][&every=ms]  text/event-stream: N events (id 1..N), then keeps the stream open unless end=1
//   /echo                        the request body back, with the method and the request's headers as JSON fields
//   /trailers                    a body, then trailers (grpc-status: 0, x-trailer: yes)
//   /big?kb=N                    N KiB of 'x', as fast as the window lets it go
//   anything else                {path, method, headers} as JSON
import http2 from 'node:http2';
import { track } from './harness.mjs';

export async function h2Backend({ tls, maxConcurrentStreams, onStream, host = '127.0.0.1' } = {}) {
    const settings = maxConcurrentStreams ? { maxConcurrentStreams } : {};
    const sessions = new Set();
    const state = { sessions: 0, maxOpen: 0, streams: 0, paths: [], bigSent: 0, goneStreams: 0 };
    const handler = (stream, headers) => {
        const sess = stream.session;
        stream.on('error', () => {}); /* resets and GOAWAYs are what these tests are about */
        sess.__open = (sess.__open || 0) + 1;
        state.maxOpen = Math.max(state.maxOpen, sess.__open);
        state.streams++;
        stream.on('close', () => {
            sess.__open--;
            state.goneStreams++;
        });
        const url = new URL(headers[':path'], 'http://x');
        state.paths.push(url.pathname);
        if (onStream && onStream(stream, headers, url) === true) return;
        const p = url.pathname;
        if (p.includes('/sse')) {
            const n = Number(url.searchParams.get('n') || 3);
            const every = Number(url.searchParams.get('every') || 0);
            stream.respond({ ':status': 200, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
            let i = 0;
            const one = () => {
                if (stream.destroyed || stream.closed) return;
                i++;
                stream.write(`id: ${i}\ndata: event ${i} of ${p}\n\n`);
                if (i < n) {
                    if (every) setTimeout(one, every);
                    else one();
                } else if (url.searchParams.get('end')) {
                    stream.end();
                }
            };
            if (n > 0) one();
            else if (url.searchParams.get('end')) stream.end();
            return;
        }
        if (p.includes('/echo')) {
            const chunks = [];
            stream.on('data', d => chunks.push(d));
            stream.on('end', () => {
                const body = Buffer.concat(chunks).toString('utf8');
                const out = JSON.stringify({ method: headers[':method'], headers, body, length: body.length });
                stream.respond({ ':status': 200, 'content-type': 'application/json' });
                stream.end(out);
            });
            return;
        }
        if (p.includes('/trailers')) {
            stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
            stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'x-trailer': 'yes' }));
            stream.end('body-before-trailers');
            return;
        }
        if (p.includes('/big')) {
            /* Read the (empty) request to its end. A Node stream whose readable side never ended is reset with
             * NO_ERROR once its writable side finishes, and that RST_STREAM goes out ahead of the DATA still waiting
             * for the gateway's window: the response would lose its END_STREAM, which the gateway rightly treats as
             * a cut response. */
            stream.resume();
            const kb = Number(url.searchParams.get('kb') || 1024);
            stream.respond({ ':status': 200, 'content-type': 'application/octet-stream' });
            const chunk = Buffer.alloc(16384, 'x');
            let left = kb * 1024;
            const pump = () => {
                while (left > 0) {
                    const k = Math.min(left, chunk.length);
                    left -= k;
                    state.bigSent += k;
                    if (!stream.write(k === chunk.length ? chunk : chunk.subarray(0, k))) {
                        stream.once('drain', pump);
                        return;
                    }
                }
                stream.end();
            };
            pump();
            return;
        }
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ path: headers[':path'], method: headers[':method'], headers }));
    };
    const server = tls
        ? http2.createSecureServer({ ...tls, settings, allowHTTP1: !!tls.allowHTTP1 })
        : http2.createServer({ settings });
    server.on('stream', handler);
    server.on('session', s => {
        state.sessions++;
        sessions.add(s);
        s.on('close', () => sessions.delete(s));
        s.on('error', () => {});
    });
    if (tls && tls.allowHTTP1) {
        server.on('request', (req, res) => {
            if (req.httpVersion === '2.0') return;
            state.h1 = (state.h1 || 0) + 1;
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ path: req.url, http1: true }));
        });
    }
    await new Promise(r => server.listen(0, host, r));
    const close = () =>
        new Promise(r => {
            for (const s of sessions) s.destroy();
            server.close(() => r());
        });
    track(close);
    return {
        port: server.address().port,
        state,
        sessions,
        server,
        /* GOAWAY on every live session (last stream id: what each has processed), then optionally close them. */
        goaway(code = 0) {
            for (const s of sessions) s.goaway(code);
        },
        close,
    };
}

/* Gateway API YAML for an h2 backend: a Service port with appProtocol, and its EndpointSlice on 127.0.0.1:port. */
export function h2Service(name, port, appProtocol = 'kubernetes.io/h2c', svcPort = 8080) {
    return `apiVersion: v1
kind: Service
metadata: {name: ${name}}
spec:
  ports: [{name: web, port: ${svcPort}${appProtocol ? `, appProtocol: ${appProtocol}` : ''}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${name}-1
  labels: {kubernetes.io/service-name: ${name}}
addressType: IPv4
endpoints: [{addresses: [127.0.0.1]}]
ports: [{name: web, port: ${port}}]
`;
}
