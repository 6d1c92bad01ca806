// es-preload.mjs: loaded with `node --import` into the peer es_harness.mjs. The harness serves its pages on a
// fixed origin 127.0.0.1:PORT; to put the page and its same-origin streams behind ssegate too, the harness's
// listen(PORT) is moved to SG_ES_LISTEN_TO and ssegate takes PORT (on 127.0.0.1 and 127.0.0.2).
import net from 'node:net';

const from = Number(process.env.SG_ES_LISTEN_FROM);
const to = Number(process.env.SG_ES_LISTEN_TO);
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
    return listen.call(this, port === from ? to : port, ...rest);
};
