// retry.test.mjs: HTTPRoute retry (experimental channel) through the binary: the listed statuses are retried up
// to `attempts` times after the first try, each retry waits `backoff`, other statuses and exhausted attempts
// pass the backend's answer through.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import { backendYaml, httpRequest, startEchoBackends } from './lib/echo-backends.mjs';
import { freePort, setup, startGateway, withLogs } from './lib/harness.mjs';

setup();

let gw;
test('retry: codes, attempts and backoff', withLogs(() => [gw], async () => {
    const be = await startEchoBackends(['backend-v1']);
    const port = await freePort();
    const yaml = `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners: [{name: http, protocol: HTTP, port: ${port}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /retry/slow}}]
    backendRefs: [{name: backend-v1, port: 8080}]
    retry: {codes: [503], attempts: 2, backoff: 300ms}
  - matches: [{path: {type: PathPrefix, value: /retry/fast}}]
    backendRefs: [{name: backend-v1, port: 8080}]
    retry: {codes: [500], attempts: 1}
---
${backendYaml(be.ports)}`;
    gw = await startGateway({ yaml, args: ['--access-log', 'off'], waitPorts: [port] });
    const seen = p => be.requests.filter(r => r.path.includes(p)).length;
    const send = (path, headers = {}) => httpRequest({ port, path, headers: { Host: `127.0.0.1:${port}`, ...headers } });

    /* Two failures, two retries allowed: the third try answers, after two backoffs. */
    let u = crypto.randomUUID();
    let t0 = performance.now();
    let r = await send(`/retry/slow?responseCode=503&succeedAfter=2&uuid=${u}`);
    assert.equal(r.status, 200);
    assert.equal(seen(u), 3, 'tries');
    assert.ok(performance.now() - t0 >= 580, `two backoffs of 300 ms took ${(performance.now() - t0).toFixed(0)} ms`);

    /* Three failures: the attempts run out and the last answer comes through. */
    u = crypto.randomUUID();
    r = await send(`/retry/slow?responseCode=503&succeedAfter=3&uuid=${u}`);
    assert.equal(r.status, 503);
    assert.equal(seen(u), 3, 'tries');

    /* A status not listed is not retried. */
    u = crypto.randomUUID();
    r = await send(`/retry/slow?responseCode=502&succeedAfter=1&uuid=${u}`);
    assert.equal(r.status, 502);
    assert.equal(seen(u), 1);

    /* No backoff: retried at once. */
    u = crypto.randomUUID();
    t0 = performance.now();
    r = await send(`/retry/fast?responseCode=500&succeedAfter=1&uuid=${u}`);
    assert.equal(r.status, 200);
    assert.equal(seen(u), 2);
    assert.ok(performance.now() - t0 < 250, 'an immediate retry waited');
}));
