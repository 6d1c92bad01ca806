// fdlimit-client.mjs: holds more connections than a proxy has descriptors, then measures what the proxy does at
// its fd limit: CPU (from /proc/PID/stat), error-log lines, and whether its health endpoint answers.
// Figures only, nothing passes or fails. Used by bench/fdlimit.sh; bounded in connections and time.
//   node bench/fdlimit-client.mjs --port P --health-port H [--health-path /healthz] --pids 1,2 --log FILE
//        [--conns 400] [--window 5] [--path /]
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';

const args = Object.fromEntries(
    process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const port = Number(args.port);
const healthPort = Number(args['health-port']);
const healthPath = args['health-path'] || '/healthz';
const pids = String(args.pids || '').split(',').filter(Boolean).map(Number);
const logFile = args.log;
const conns = Math.min(Number(args.conns || 400), 2000);
const windowS = Math.min(Number(args.window || 5), 30);
const reqPath = args.path || '/';
const TICKS = 100; // USER_HZ on Linux

const sleep = ms => new Promise(r => setTimeout(r, ms));

function cpuTicks() {
    let t = 0;
    for (const pid of pids) {
        try {
            const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
            const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
            t += Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
        } catch {
            /* gone */
        }
    }
    return t;
}

function logStat() {
    try {
        const b = fs.readFileSync(logFile);
        let lines = 0;
        for (const c of b) if (c === 10) lines++;
        return { lines, bytes: b.length };
    } catch {
        return { lines: 0, bytes: 0 };
    }
}

function get(p, path, ms = 1000) {
    return new Promise(resolve => {
        const req = http.get({ host: '127.0.0.1', port: p, path, agent: false, timeout: ms }, res => {
            /* The status is all we need: an SSE response never ends. */
            resolve(res.statusCode);
            req.destroy();
        });
        req.on('timeout', () => {
            req.destroy();
            resolve(0);
        });
        req.on('error', () => resolve(0));
    });
}

function open(i) {
    return new Promise(resolve => {
        const s = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 200)}` });
        const t = setTimeout(() => resolve(s), 2000);
        s.on('connect', () => {
            clearTimeout(t);
            resolve(s);
        });
        s.on('error', () => {
            clearTimeout(t);
            resolve(s);
        });
    });
}

const socks = [];
for (let i = 0; i < conns; i += 50) {
    const batch = [];
    for (let k = i; k < Math.min(conns, i + 50); k++) batch.push(open(k));
    socks.push(...(await Promise.all(batch)));
}
await sleep(1000);
const c0 = cpuTicks();
const l0 = logStat();
const t0 = Date.now();
let probes = 0;
let ok = 0;
while (Date.now() - t0 < windowS * 1000) {
    probes++;
    if ((await get(healthPort, healthPath)) === 200) ok++;
    await sleep(250);
}
const secs = (Date.now() - t0) / 1000;
const c1 = cpuTicks();
const l1 = logStat();
for (const s of socks) s.destroy();
await sleep(1500);
let served = 0;
for (let i = 0; i < 5; i++) served = Math.max(served, await get(port, reqPath, 2000));
console.log(
    `RESULT conns=${conns} window_s=${secs.toFixed(1)} cpu_pct=${(((c1 - c0) / TICKS / secs) * 100).toFixed(1)} ` +
        `log_lines_per_s=${((l1.lines - l0.lines) / secs).toFixed(0)} log_bytes_per_s=${((l1.bytes - l0.bytes) / secs).toFixed(0)} ` +
        `health_ok=${ok}/${probes} served_after_release=${served}`,
);
process.exit(0);
