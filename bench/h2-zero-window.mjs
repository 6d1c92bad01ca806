// bench/h2-zero-window.mjs: the zero-window attack as a command, for bench/attack-h2-window.sh.
// Usage: node bench/h2-zero-window.mjs PORT CONNS STREAMS SECONDS
// Opens CONNS connections of STREAMS streams each with SETTINGS_INITIAL_WINDOW_SIZE 0, holds them SECONDS,
// then prints one line: RESULT streams=N responded=N reset=N closed=N goaways=N sessions_closed=N
import { zeroWindow } from '../tests/integration/lib/h2attack.mjs';

const [port, conns, streams, secs] = process.argv.slice(2).map(Number);
if (!port || !conns || !streams || !(secs > 0)) {
    console.error('usage: node bench/h2-zero-window.mjs PORT CONNS STREAMS SECONDS');
    process.exit(2);
}
const a = await zeroWindow({ port, conns, streams, path: '/zw' });
console.log('READY');
await new Promise(r => setTimeout(r, secs * 1000));
const n = f => a.streams.filter(f).length;
console.log(
    `RESULT streams=${a.streams.length} responded=${n(s => s.status > 0)} reset=${n(s => s.reset)} ` +
        `closed=${n(s => s.closed)} goaways=${a.goaways} sessions_closed=${a.sessionsClosed}`,
);
a.close();
process.exit(0);
