/* ws.h: the WebSocket wire, what a gateway needs of it (RFC 6455): the opening handshake's checks and accept
 * key, an incremental frame-header tracker that knows where frames end (so a close frame is only ever put
 * between frames), and close frames. Pure: no I/O, no allocation. */
#ifndef SG_WS_H
#define SG_WS_H

#include <stdint.h>

#include "codec/h1parse.h"
#include "core/sg.h"

#define SG_WS_KEY_LEN 24            /* base64 of 16 bytes */
#define SG_WS_ACCEPT_LEN 28         /* base64 of a SHA-1 */
#define SG_WS_CLOSE_MAX 32          /* room for a close frame this module writes */
#define SG_WS_GOING_AWAY 1001

/*
 * Classifies a request for the WebSocket opening handshake (RFC 6455 4.2.1). Returns 0 when it is not one
 * (no `Upgrade: websocket`, no `upgrade` in Connection, or HTTP/1.0, where RFC 9110 7.8 says Upgrade is
 * ignored): the request goes on as a plain one, its upgrade headers stripped. Returns 1 for a valid one.
 * Otherwise the HTTP status to answer (400, 426) with *why set to a static reason.
 * h2_connect: an HTTP/2 extended CONNECT with :protocol websocket (RFC 8441): no Upgrade, Connection or
 * Sec-WebSocket-Key take part; the version must still be 13.
 */
int sg_ws_check_upgrade(const sg_h1_msg_t *msg, bool h2_connect, const char **why);
/* True when header `name` of msg lists `token` (comma-separated, case-insensitive). */
bool sg_ws_header_has_token(const sg_h1_msg_t *msg, const char *name, const char *token);
/* Sec-WebSocket-Accept for a key (base64 of SHA-1(key + GUID)); out gets SG_WS_ACCEPT_LEN bytes + NUL.
 * Returns 0 or -EIO. */
int sg_ws_accept(sg_str_t key, char out[SG_WS_ACCEPT_LEN + 1]);
/* Encodes 16 random bytes as a Sec-WebSocket-Key; out gets SG_WS_KEY_LEN bytes + NUL. */
void sg_ws_make_key(const uint8_t rnd[16], char out[SG_WS_KEY_LEN + 1]);

/* Frame tracker for one direction of a connection. */
typedef struct sg_ws_track {
    uint64_t left;          /* payload bytes left of the current frame */
    uint64_t frames;        /* complete frames seen */
    uint8_t hdr[14];        /* the current header, while it is incomplete */
    uint8_t have;           /* header bytes gathered (0: at a boundary, or in a payload) */
    uint8_t opcode;         /* of the last complete header */
    bool lost;              /* a header the tracker cannot follow (a 64-bit length with its top bit set) */
    bool close_seen;        /* a close frame (opcode 8) went by */
} sg_ws_track_t;

void sg_ws_track_init(sg_ws_track_t *t);
/* True when the bytes fed so far end exactly at a frame boundary. */
bool sg_ws_track_at_boundary(const sg_ws_track_t *t);
/*
 * Feeds n bytes. *first_boundary gets the smallest k in 1..n such that the first k bytes end at a frame boundary,
 * or SIZE_MAX when none does. Once lost, the tracker never reports a boundary again.
 */
void sg_ws_track_feed(sg_ws_track_t *t, const uint8_t *p, size_t n, size_t *first_boundary);

/* Writes a close frame with a status code and a short reason (<= 123 bytes): masked with mask_key (client to
 * server) or not (server to client). Returns its length (<= SG_WS_CLOSE_MAX with a reason of up to 18 bytes),
 * or 0 when cap is too small. */
size_t sg_ws_close_frame(uint8_t *out, size_t cap, uint16_t code, const char *reason, bool masked,
                         uint32_t mask_key);

#endif
