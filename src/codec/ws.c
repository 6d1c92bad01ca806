/* ws.c: the WebSocket opening handshake's checks and keys, the frame-boundary tracker, close frames
 * (RFC 6455). Pure. */
#include <openssl/evp.h>

#include "codec/ws.h"

static const char GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool sg_ws_header_has_token(const sg_h1_msg_t *msg, const char *name, const char *token)
{
    size_t from = 0;
    const sg_h1_header_t *h;
    while ((h = sg_h1parse_find(msg, name, &from)) != NULL) {
        sg_str_t v = h->value;
        size_t a = 0;
        while (a < v.n) {
            size_t e = a;
            while (e < v.n && v.p[e] != ',')
                e++;
            size_t x = a, y = e;
            while (x < y && is_ows(v.p[x]))
                x++;
            while (y > x && is_ows(v.p[y - 1]))
                y--;
            if (sg_str_ieq_lit((sg_str_t){v.p + x, y - x}, token))
                return true;
            a = e + 1;
        }
    }
    return false;
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* A base64 encoding of exactly 16 bytes: 22 alphabet characters, the last one with its low 4 bits clear, "==". */
static bool key_ok(sg_str_t k)
{
    if (k.n != SG_WS_KEY_LEN || k.p[22] != '=' || k.p[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!b64_char(k.p[i]))
            return false;
    static const char low0[] = "AQgw"; /* the characters whose 6-bit value has its low 4 bits clear */
    for (size_t i = 0; i < 4; i++)
        if (k.p[21] == low0[i])
            return true;
    return false;
}

static size_t count(const sg_h1_msg_t *msg, const char *name, const sg_h1_header_t **last)
{
    size_t from = 0, n = 0;
    const sg_h1_header_t *h;
    while ((h = sg_h1parse_find(msg, name, &from)) != NULL) {
        *last = h;
        n++;
    }
    return n;
}

int sg_ws_check_upgrade(const sg_h1_msg_t *msg, bool h2_connect, const char **why)
{
    const sg_h1_header_t *h = NULL;
    *why = NULL;
    if (!h2_connect) {
        if (msg->minor_version == 0 || !sg_ws_header_has_token(msg, "upgrade", "websocket") ||
            !sg_ws_header_has_token(msg, "connection", "upgrade"))
            return 0;
        if (!sg_str_eq(msg->method, SG_STR("GET"))) {
            *why = "a WebSocket handshake must be a GET";
            return 400;
        }
        if (msg->body == SG_H1_BODY_CHUNKED || (msg->body == SG_H1_BODY_LENGTH && msg->content_length > 0)) {
            *why = "a WebSocket handshake has no body";
            return 400;
        }
        if (count(msg, "sec-websocket-key", &h) != 1 || !key_ok(h->value)) {
            *why = "missing or invalid Sec-WebSocket-Key";
            return 400;
        }
    }
    size_t nv = count(msg, "sec-websocket-version", &h);
    if (nv == 0) {
        *why = "missing Sec-WebSocket-Version";
        return 400;
    }
    if (nv > 1 || !sg_str_eq(h->value, SG_STR("13"))) {
        *why = "unsupported Sec-WebSocket-Version (this gateway speaks 13)";
        return 426;
    }
    return 1;
}

int sg_ws_accept(sg_str_t key, char out[SG_WS_ACCEPT_LEN + 1])
{
    unsigned char in[64 + sizeof(GUID)], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (key.n > 64)
        return -EIO;
    memcpy(in, key.p, key.n);
    memcpy(in + key.n, GUID, sizeof(GUID) - 1);
    if (EVP_Digest(in, key.n + sizeof(GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 characters and a NUL */
    return 0;
}

void sg_ws_make_key(const uint8_t rnd[16], char out[SG_WS_KEY_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *)out, rnd, 16);
}

void sg_ws_track_init(sg_ws_track_t *t)
{
    memset(t, 0, sizeof(*t));
}

bool sg_ws_track_at_boundary(const sg_ws_track_t *t)
{
    return !t->lost && t->have == 0 && t->left == 0;
}

/* Header bytes needed once the first two are known. */
static uint8_t header_len(const uint8_t *h)
{
    uint8_t len7 = h[1] & 0x7f;
    uint8_t n = 2 + ((h[1] & 0x80) ? 4 : 0);
    return (uint8_t)(n + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0));
}

void sg_ws_track_feed(sg_ws_track_t *t, const uint8_t *p, size_t n, size_t *first_boundary)
{
    size_t i = 0;
    *first_boundary = SIZE_MAX;
    while (i < n && !t->lost) {
        if (t->left > 0) {
            uint64_t k = SG_MIN((uint64_t)(n - i), t->left);
            t->left -= k;
            i += (size_t)k;
            if (t->left == 0) {
                t->frames++;
                if (*first_boundary == SIZE_MAX)
                    *first_boundary = i;
            }
            continue;
        }
        /* Gather the header: 2 bytes, then as many as they announce. */
        t->hdr[t->have++] = p[i++];
        if (t->have < 2 || t->have < header_len(t->hdr))
            continue;
        uint8_t len7 = t->hdr[1] & 0x7f;
        uint64_t len = len7;
        if (len7 == 126) {
            len = ((uint64_t)t->hdr[2] << 8) | t->hdr[3];
        } else if (len7 == 127) {
            len = 0;
            for (int j = 0; j < 8; j++)
                len = (len << 8) | t->hdr[2 + j];
            if (len >> 63) {
                t->lost = true; /* RFC 6455 5.2: the most significant bit MUST be 0 */
                break;
            }
        }
        t->opcode = t->hdr[0] & 0x0f;
        if (t->opcode == 8)
            t->close_seen = true;
        t->have = 0;
        t->left = len;
        if (len == 0) {
            t->frames++;
            if (*first_boundary == SIZE_MAX)
                *first_boundary = i;
        }
    }
}

size_t sg_ws_close_frame(uint8_t *out, size_t cap, uint16_t code, const char *reason, bool masked,
                         uint32_t mask_key)
{
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123)
        rl = 123;
    size_t plen = 2 + rl;
    size_t need = 2 + (masked ? 4 : 0) + plen;
    if (cap < need)
        return 0;
    size_t o = 0;
    out[o++] = 0x88; /* FIN, close */
    out[o++] = (uint8_t)((masked ? 0x80 : 0) | plen);
    uint8_t m[4] = {(uint8_t)(mask_key >> 24), (uint8_t)(mask_key >> 16), (uint8_t)(mask_key >> 8),
                    (uint8_t)mask_key};
    if (masked) {
        memcpy(out + o, m, 4);
        o += 4;
    }
    size_t start = o;
    out[o++] = (uint8_t)(code >> 8);
    out[o++] = (uint8_t)code;
    if (rl)
        memcpy(out + o, reason, rl);
    o += rl;
    if (masked)
        for (size_t j = 0; j < plen; j++)
            out[start + j] ^= m[j & 3];
    return o;
}
