#!/usr/bin/env python3
# gen_h2conn_corpus.py: writes the seed corpus of fuzz_h2conn.c (fuzz/corpus/h2conn/): the flood and attack
# shapes, as frames after the mode byte (see fuzz_h2conn.c). Run from the repository root.
import os
import struct

OUT = 'fuzz/corpus/h2conn'
PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
END_STREAM, ACK, END_HEADERS = 1, 1, 4


def frame(t, flags, sid, payload=b''):
    return struct.pack('>I', len(payload))[1:] + bytes([t, flags]) + struct.pack('>I', sid) + payload


def s(n):
    b = n.encode()
    return bytes([len(b)]) + b


def lit(name, value):
    return b'\x00' + s(name) + s(value)


def req(path, method='GET', extra=()):
    return b''.join(lit(n, v) for n, v in [(':method', method), (':scheme', 'http'), (':path', path),
                                           (':authority', 'fuzz.test'), *extra])


def settings(pairs=()):
    return frame(SETTINGS, 0, 0, b''.join(struct.pack('>HI', k, v) for k, v in pairs))


def mode(raw=False, piece=0):
    return bytes([(1 if raw else 0) | (piece << 1)])


def write(name, m, body):
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(m + body)


os.makedirs(OUT, exist_ok=True)
hello = settings() + frame(SETTINGS, ACK, 0)
write('get-404', mode(), hello + frame(HEADERS, END_STREAM | END_HEADERS, 1, req('/x')))
write('get-refused-backend', mode(), hello + frame(HEADERS, END_STREAM | END_HEADERS, 1, req('/a/1')))
write('post-body-then-reset', mode(), hello +
      frame(HEADERS, END_HEADERS, 1, req('/a/p', 'POST', [('content-length', '8')])) +
      frame(DATA, 0, 1, b'abcd') + frame(RST, 0, 1, struct.pack('>I', 8)) + frame(DATA, END_STREAM, 1, b'efgh'))
pairs = b''.join(frame(HEADERS, END_STREAM | END_HEADERS, i, req('/a/%d' % i)) + frame(RST, 0, i, struct.pack('>I', 8))
                 for i in range(1, 2 * 1200, 2))
write('rapid-reset-same-read', mode(), hello + pairs)
write('rapid-reset-split-9', mode(piece=2), hello + pairs[:60 * 200])
write('rapid-reset-split-64', mode(piece=4), hello + pairs[:60 * 400])
started = b''.join(frame(HEADERS, END_STREAM | END_HEADERS, i, req('/a/s%d' % i)) + frame(PING, 0, 0, b'p' * 8) +
                   frame(RST, 0, i, struct.pack('>I', 8)) for i in range(1, 41, 2))
write('reset-after-start', mode(piece=5), hello + started)
write('settings-flood', mode(), hello + settings([(4, 65535)]) * 3000)
write('ping-flood', mode(), hello + frame(PING, 0, 0, b'12345678') * 3000)
cont = frame(HEADERS, END_STREAM, 1, req('/')) + b''.join(frame(CONT, 0, 1, lit('x-f%d' % i, 'v')) for i in range(200))
write('continuation-flood', mode(), hello + cont)
zero = settings([(4, 0)]) + frame(SETTINGS, ACK, 0) + b''.join(
    frame(HEADERS, END_STREAM | END_HEADERS, i, req('/a/z%d' % i if i % 4 == 1 else '/z%d' % i)) for i in range(1, 129, 2))
write('zero-window', mode(), zero)
write('bad-preface', mode(raw=True), b'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n' + hello)
write('h1-request', mode(raw=True), b'GET /x HTTP/1.1\r\nHost: fuzz.test\r\n\r\n')
write('window-update-overflow', mode(), hello + frame(WINDOW, 0, 0, struct.pack('>I', 0x7fffffff)) * 2)
bomb = frame(HEADERS, END_STREAM | END_HEADERS, 1, req('/', extra=[('x-h%d' % i, 'v' * 100) for i in range(400)]))
write('header-bomb', mode(piece=6), hello + bomb)
write('goaway-then-request', mode(), hello + frame(GOAWAY, 0, 0, struct.pack('>II', 0, 0)) +
      frame(HEADERS, END_STREAM | END_HEADERS, 1, req('/x')))
write('trailers-before-start', mode(), hello + frame(HEADERS, END_HEADERS, 1, req('/a/t', 'POST')) +
      frame(DATA, 0, 1, b'body') + frame(HEADERS, END_STREAM | END_HEADERS, 1, lit('x-trailer', 'v')))
# WebSocket over HTTP/2 (RFC 8441): extended CONNECT with :protocol, with and without its version, then DATA.
ws = [(':protocol', 'websocket'), ('sec-websocket-version', '13')]
write('ws-connect-refused-backend', mode(piece=2), hello +
      frame(HEADERS, END_HEADERS, 1, req('/a/ws', 'CONNECT', ws)) + frame(DATA, 0, 1, b'\x81\x85abcd\x09\x07\x0f\x08\x0e') +
      frame(DATA, END_STREAM, 1, b'\x88\x80abcd'))
write('ws-connect-no-route', mode(), hello + frame(HEADERS, END_HEADERS, 1, req('/x', 'CONNECT', ws)) +
      frame(RST, 0, 1, struct.pack('>I', 8)))
write('ws-connect-no-version', mode(), hello +
      frame(HEADERS, END_HEADERS, 1, req('/a/ws', 'CONNECT', [(':protocol', 'websocket')])))
write('ws-connect-other-protocol', mode(), hello +
      frame(HEADERS, END_HEADERS, 1, req('/a/ws', 'CONNECT', [(':protocol', 'webtransport')])))
