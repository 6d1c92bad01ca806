// count-backend.mjs: a backend for the conformance runners that answers 200 and appends one JSON line per
// request it receives (method, url, body length) to the file named by argv[2]; prints its port when ready.
import fs from 'node:fs';
import http from 'node:http';

const log = process.argv[2];
const server = http.createServer((req, res) => {
    let n = 0;
    req.on('data', d => (n += d.length));
    req.on('end', () => {
        fs.appendFileSync(log, JSON.stringify({ method: req.method, url: req.url.slice(0, 60), body: n, at: Date.now() }) + '\n');
        res.end('ok');
    });
});
server.on('clientError', (err, sock) => {
    fs.appendFileSync(log, JSON.stringify({ clientError: err.code, at: Date.now() }) + '\n');
    sock.destroy();
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
process.on('SIGTERM', () => process.exit(0));
