/* grpc.c: gRPC-over-HTTP/2 formats the gateway reads and writes itself: content-type, grpc-timeout, grpc-status and
 * grpc-message, and the grpc.health.v1 Check messages. Pure. */
#include "codec/grpc.h"

#include <stdio.h>
#include <string.h>

sg_grpc_kind_t sg_grpc_kind(const sg_h1_msg_t *msg)
{
    size_t from = 0;
    const sg_h1_header_t *h = sg_h1parse_find(msg, "content-type", &from);
    if (h == NULL)
        return SG_GRPC_NOT;
    sg_str_t v = h->value;
    static const char base[] = "application/grpc";
    size_t bl = sizeof(base) - 1;
    if (v.n < bl || !sg_str_ieq((sg_str_t){v.p, bl}, SG_STR(base)))
        return SG_GRPC_NOT;
    if (v.n == bl || v.p[bl] == '+' || v.p[bl] == ';')
        return SG_GRPC_CALL;
    static const char web[] = "-web";
    size_t wl = sizeof(web) - 1;
    if (v.n >= bl + wl && sg_str_ieq((sg_str_t){v.p + bl, wl}, SG_STR(web)) &&
        (v.n == bl + wl || v.p[bl + wl] == '+' || v.p[bl + wl] == ';' || v.p[bl + wl] == '-'))
        return SG_GRPC_WEB;
    return SG_GRPC_NOT;
}

int sg_grpc_parse_timeout(sg_str_t v, int64_t *ms)
{
    if (v.n < 2 || v.n > 9)
        return SG_EBADMSG;
    int64_t x = 0;
    for (size_t i = 0; i + 1 < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return SG_EBADMSG;
        x = x * 10 + (v.p[i] - '0');
    }
    /* At most 8 digits: 99999999 hours still fits an int64 of ms. */
    switch (v.p[v.n - 1]) {
    case 'H': x *= 3600000; break;
    case 'M': x *= 60000; break;
    case 'S': x *= 1000; break;
    case 'm': break;
    case 'u': x = (x + 999) / 1000; break;
    case 'n': x = (x + 999999) / 1000000; break;
    default: return SG_EBADMSG;
    }
    *ms = x > 0 ? x : 1;
    return 0;
}

int sg_grpc_status_of(const sg_h1_header_t *hdrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!sg_str_ieq_lit(hdrs[i].name, "grpc-status"))
            continue;
        sg_str_t v = hdrs[i].value;
        if (v.n == 0 || v.n > 9)
            return -1;
        int x = 0;
        for (size_t k = 0; k < v.n; k++) {
            if (v.p[k] < '0' || v.p[k] > '9')
                return -1;
            x = x * 10 + (v.p[k] - '0');
        }
        return x <= 16 ? x : SG_GRPC_UNKNOWN;
    }
    return -1;
}

size_t sg_grpc_status_fields(int code, const char *msg, bool content_type, sg_h1_header_t *out, char *buf,
                             size_t cap)
{
    size_t k = 0, used = 0;
    if (content_type)
        out[k++] = (sg_h1_header_t){SG_STR("content-type"), SG_STR("application/grpc")};
    int cl = snprintf(buf, cap, "%d", code);
    if (cl < 0 || (size_t)cl >= cap)
        return k;
    out[k++] = (sg_h1_header_t){SG_STR("grpc-status"), {buf, (size_t)cl}};
    used = (size_t)cl;
    if (msg == NULL)
        return k;
    /* grpc-message: percent-encoded UTF-8; bytes outside 0x20..0x7E and '%' itself are encoded. */
    static const char hex[] = "0123456789ABCDEF";
    size_t start = used;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        bool plain = *p >= 0x20 && *p <= 0x7e && *p != '%';
        if (used + (plain ? 1 : 3) > cap)
            break;
        if (plain) {
            buf[used++] = (char)*p;
        } else {
            buf[used++] = '%';
            buf[used++] = hex[*p >> 4];
            buf[used++] = hex[*p & 15];
        }
    }
    out[k++] = (sg_h1_header_t){SG_STR("grpc-message"), {buf + start, used - start}};
    return k;
}

int sg_grpc_health_request(const char *service, uint8_t *out, size_t cap)
{
    size_t sl = strlen(service);
    /* Field 1, wire type 2 (tag 0x0a), a varint length, the bytes; an empty service is the empty message. */
    size_t vl = sl < 128 ? 1 : sl < 16384 ? 2 : 3;
    size_t body = sl > 0 ? 1 + vl + sl : 0;
    if (sl >= 2097152 || 5 + body > cap)
        return -E2BIG;
    out[0] = 0; /* not compressed */
    out[1] = (uint8_t)(body >> 24);
    out[2] = (uint8_t)(body >> 16);
    out[3] = (uint8_t)(body >> 8);
    out[4] = (uint8_t)body;
    if (sl == 0)
        return 5;
    size_t o = 5;
    out[o++] = 0x0a;
    size_t x = sl;
    while (x >= 128) {
        out[o++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    out[o++] = (uint8_t)x;
    memcpy(out + o, service, sl);
    return (int)(o + sl);
}

/* A protobuf varint at p[*i..n); SG_EBADMSG past 10 bytes or the end. */
static int varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*i >= n)
            return SG_EBADMSG;
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return SG_EBADMSG;
}

int sg_grpc_health_response(const uint8_t *p, size_t n)
{
    if (n < 5)
        return SG_EINCOMPLETE;
    if (p[0] != 0)
        return SG_EBADMSG; /* compressed: we asked for none (no grpc-accept-encoding) */
    size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
    if (len > 65536)
        return SG_EBADMSG;
    if (n - 5 < len)
        return SG_EINCOMPLETE;
    const uint8_t *m = p + 5;
    size_t i = 0;
    int status = 0;
    while (i < len) {
        uint64_t key, v;
        if (varint(m, len, &i, &key) != 0)
            return SG_EBADMSG;
        switch (key & 7) {
        case 0:
            if (varint(m, len, &i, &v) != 0)
                return SG_EBADMSG;
            if (key >> 3 == 1)
                status = v <= 3 ? (int)v : 0;
            break;
        case 1:
            if (len - i < 8)
                return SG_EBADMSG;
            i += 8;
            break;
        case 2:
            if (varint(m, len, &i, &v) != 0 || v > len - i)
                return SG_EBADMSG;
            i += (size_t)v;
            break;
        case 5:
            if (len - i < 4)
                return SG_EBADMSG;
            i += 4;
            break;
        default:
            return SG_EBADMSG;
        }
    }
    return status;
}
