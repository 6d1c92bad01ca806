// harness.mjs: starts the real ssegate binary on a temp config and tears down everything a test file started.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = process.env.SSEGATE_BIN || path.join(repoRoot, 'ssegate');
/* The ASan build is several times slower: scale the timing budgets that are not the subject of a test. */
export const SLOW = /build-san/.test(BIN) || /build-san/.test(process.env.SG_BUILD_DIR || '') ? 3 : 1;

export const sleep = ms => new Promise(r => setTimeout(r, ms));

/* Everything started by this process: cleaned in `after` of each test file, and killed at exit at the latest. */
const cleanups = new Set();
const children = new Set();
let hooked = false;

export function track(fn) {
    cleanups.add(fn);
    return fn;
}

export async function cleanupAll() {
    const fns = [...cleanups].reverse();
    cleanups.clear();
    const errors = [];
    for (const fn of fns) {
        try {
            await fn();
        } catch (e) {
            errors.push(e);
        }
    }
    if (errors.length) throw errors[0];
}

/*
 * Registers the file-level `after` hook; call once at the top of each test file. A watchdog ends a test file
 * that runs past SG_IT_FILE_TIMEOUT_MS (default 240 s, x3 for ASan) so a hung gateway fails the suite instead
 * of stalling it.
 */
export function setup() {
    after(cleanupAll);
    if (!hooked) {
        hooked = true;
        const limit = Number(process.env.SG_IT_FILE_TIMEOUT_MS || 240000 * SLOW);
        setTimeout(() => {
            console.error(`harness: test file still running after ${limit} ms: killing what it started and failing it`);
            for (const c of children) console.error(c.__logs ? c.__logs() : `pid ${c.pid}`);
            process.exit(1);
        }, limit).unref();
        process.on('exit', () => {
            for (const c of children) {
                try {
                    c.kill('SIGKILL');
                } catch {
                    /* already gone */
                }
            }
        });
    }
}

/* Ports handed out by freePort in this process: the kernel may give a closed probe's port again to the next probe,
 * and a test that asks for two ports before binding either would then get the same one twice. */
const handedOut = new Set();

function probe(port, host, ipv6Only = false) {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.on('error', reject);
        s.listen({ port, host, ipv6Only }, () => {
            const got = s.address().port;
            s.close(() => resolve(got));
        });
    });
}

/* A free TCP port: bind port 0, read it, close. Without host, the port is one nothing listens on at any local
 * address, as gateway listeners bind 0.0.0.0 (a Gateway without addresses) and backends 127.0.0.1: the probe binds
 * the dual-stack wildcard [::] (0.0.0.0 where IPv6 is off), which the kernel gives only a port no IPv4 or IPv6 socket
 * of any address listens on; a port merely free on 127.0.0.1 may be held on 0.0.0.0 or 127.0.0.2. With host, the
 * port is free on that address, as before. Never the same port twice in one process. */
export async function freePort(host) {
    for (let i = 0; ; i++) {
        let port;
        if (host !== undefined) {
            port = await probe(0, host);
        } else {
            try {
                port = await probe(0, '::');
            } catch (e) {
                if (!['EAFNOSUPPORT', 'EADDRNOTAVAIL'].includes(e.code)) throw e;
                port = await probe(0, '0.0.0.0');
            }
        }
        if (!handedOut.has(port) || i >= 50) {
            handedOut.add(port);
            return port;
        }
    }
}

let tmpRoot = null;
export function tmpDir() {
    if (!tmpRoot) {
        tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ssegate-it-'));
        const dir = tmpRoot;
        process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    }
    return tmpRoot;
}

let tmpSeq = 0;
export function writeTemp(name, text) {
    const p = path.join(tmpDir(), `${tmpSeq++}-${name}`);
    fs.writeFileSync(p, text);
    return p;
}

/*
 * Builds a Gateway API config. routes: [{name, path='/', type='PathPrefix', backends:[{name, port}],
 * timeout (HTTPRoute timeouts.request), policyTimeout (RoutePolicy routeTimeout), hostnames}].
 * listeners: [{name, port}] or just `port`. extra: YAML documents appended verbatim.
 */
export function gatewayYaml({ port, listeners, address = '127.0.0.1', routes = [], extra = '' }) {
    const ls = listeners || [{ name: 'http', port }];
    const docs = [];
    const addr = address ? `  addresses: [{type: IPAddress, value: ${address}}]\n` : '';
    docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: ssegate
${addr}  listeners:
${ls.map(l => `  - {name: ${l.name}, protocol: HTTP, port: ${l.port}}`).join('\n')}
`);
    for (const r of routes) {
        const matches = r.matches || `[{path: {type: ${r.type || 'PathPrefix'}, value: ${r.path || '/'}}}]`;
        const be = r.backends.map(b => `{name: ${b.name}, port: ${b.port}}`).join(', ');
        const timeouts = r.timeout !== undefined ? `\n    timeouts: {request: ${r.timeout}}` : '';
        const hosts = r.hostnames ? `\n  hostnames: [${r.hostnames.join(', ')}]` : '';
        docs.push(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ${r.name}}
spec:
  parentRefs: [{name: gw}]${hosts}
  rules:
  - matches: ${matches}
    backendRefs: [${be}]${timeouts}
`);
        if (r.policyTimeout !== undefined) {
            docs.push(`apiVersion: alb.networking.azure.io/v1
kind: RoutePolicy
metadata: {name: ${r.name}-policy}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: HTTPRoute, name: ${r.name}}
  default: {timeouts: {routeTimeout: ${r.policyTimeout}}}
`);
        }
    }
    if (extra) docs.push(extra);
    return docs.join('---\n');
}

function connectOnce(port, host) {
    return new Promise(resolve => {
        const s = net.connect({ port, host });
        s.once('connect', () => {
            s.destroy();
            resolve(true);
        });
        s.once('error', () => resolve(false));
    });
}

function tail(s, n = 6000) {
    return s.length > n ? '...' + s.slice(-n) : s;
}

/*
 * Runs ssegate and returns a handle. opts: {yaml | config, args: [], waitPorts: [ports], env, ready: bool,
 * nofile: the process's descriptor limit, cpus: a CPU list to start it on (taskset)}.
 * The child's stdout and stderr are kept (handle.stdout / handle.stderr) for assertions and failure reports.
 */
export async function startGateway(opts = {}) {
    /* opts.noConfig: no -c (a config source given in opts.args, such as --kubeconfig) */
    const config = opts.noConfig ? null : opts.config || writeTemp('gw.yaml', opts.yaml);
    const args = [...(config ? ['-c', config] : []), ...(opts.args || [])];
    if (!fs.existsSync(BIN)) throw new Error(`ssegate binary not found at ${BIN} (build with make, or set SSEGATE_BIN)`);
    /* exec keeps the PID, so signals reach ssegate itself; the fd limit is raised to the hard limit for big tests,
     * or set (soft and hard) to opts.nofile for tests of what happens at the limit. */
    const limit = opts.nofile ? `ulimit -n ${Number(opts.nofile)} || exit 97` : 'ulimit -n "$(ulimit -Hn)" 2>/dev/null';
    const place = opts.cpus ? `taskset -c ${String(opts.cpus).replace(/[^0-9,-]/g, '')} ` : '';
    const child = spawn('bash', ['-c', `${limit}; exec ${place}"$@"`, 'ssegate', BIN, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1', ...(opts.env || {}) },
    });
    children.add(child);
    const gw = {
        child,
        config,
        args,
        stdout: '',
        stderr: '',
        exitCode: undefined,
        signal: undefined,
        stopping: false,
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', d => (gw.stdout += d));
    child.stderr.on('data', d => (gw.stderr += d));
    gw.exited = new Promise(resolve => {
        child.on('exit', (code, signal) => {
            gw.exitCode = code;
            gw.signal = signal;
            children.delete(child);
            resolve({ code, signal });
        });
    });
    gw.logs = () =>
        `--- ssegate ${args.join(' ')} (${gw.running() ? 'running' : gw.signal ? `killed by ${gw.signal}` : `exit ${gw.exitCode}`})\n` +
        `--- stderr:\n${tail(gw.stderr)}\n--- stdout:\n${tail(gw.stdout, 3000)}`;
    gw.running = () => gw.exitCode === undefined && gw.signal === undefined;
    child.__logs = gw.logs;
    /* Sends sig and waits for the exit; SIGKILL after ms. */
    gw.stop = async (sig = 'SIGTERM', ms = 5000 * SLOW) => {
        gw.stopping = true;
        if (gw.running()) {
            child.kill(sig);
            const t = setTimeout(() => gw.running() && child.kill('SIGKILL'), ms);
            await gw.exited;
            clearTimeout(t);
        }
        return { code: gw.exitCode, signal: gw.signal };
    };
    track(async () => {
        const crashedBefore = !gw.stopping && !gw.running();
        await gw.stop('SIGKILL');
        const sanitizer = /ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer/.test(gw.stderr);
        if (crashedBefore || sanitizer) {
            throw new Error(`ssegate ${crashedBefore ? 'exited unexpectedly' : 'reported a sanitizer error'}\n${gw.logs()}`);
        }
    });
    if (opts.ready !== false) {
        const ports = opts.waitPorts || [];
        const deadline = Date.now() + 10000 * SLOW;
        for (const p of ports) {
            for (;;) {
                if (!gw.running()) throw new Error(`ssegate exited before listening on ${p}\n${gw.logs()}`);
                if (await connectOnce(p, opts.host || '127.0.0.1')) break;
                if (Date.now() > deadline) throw new Error(`ssegate did not listen on ${p} in time\n${gw.logs()}`);
                await sleep(25);
            }
        }
    }
    return gw;
}

/* Runs ssegate to completion (e.g. --check); returns {code, signal, stdout, stderr}. */
export function runGateway(args, { timeout = 10000 * SLOW } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        children.add(child);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', d => (stdout += d));
        child.stderr.on('data', d => (stderr += d));
        const t = setTimeout(() => {
            child.kill('SIGKILL');
            reject(new Error(`ssegate ${args.join(' ')} did not exit in ${timeout} ms\n${stderr}`));
        }, timeout);
        child.on('error', reject);
        child.on('exit', (code, signal) => {
            clearTimeout(t);
            children.delete(child);
            resolve({ code, signal, stdout, stderr });
        });
    });
}

/* Wraps a test body so that a failure carries the gateway's output. gws: () => [gateway handles]. */
export function withLogs(gws, fn) {
    return async t => {
        try {
            await fn(t);
        } catch (e) {
            const list = (typeof gws === 'function' ? gws() : gws).filter(Boolean);
            if (list.length && e && typeof e === 'object') {
                const extra = list.map(g => g.logs()).join('\n');
                try {
                    e.message = `${e.message}\n${extra}`;
                } catch {
                    /* read-only message */
                }
            }
            throw e;
        }
    };
}

/* Polls fn until it returns a truthy value or ms pass; returns the value or throws with what. */
export async function waitFor(fn, ms, what) {
    const deadline = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(20);
    }
}

/* Runs a command to completion (SIGKILL after timeout ms); resolves {code, stdout, stderr}. */
export function run(cmd, args, { timeout = 30000 * SLOW, onStdout } = {}) {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', d => {
            stdout += d;
            if (onStdout) onStdout(stdout, child);
        });
        child.stderr.on('data', d => (stderr += d));
        const t = setTimeout(() => child.kill('SIGKILL'), timeout);
        child.on('error', reject);
        child.on('exit', code => {
            clearTimeout(t);
            resolve({ code, stdout, stderr });
        });
    });
}
