/* escape.c: the one escaping function for input quoted in error messages, log lines and access-log fields. */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "core/escape.h"

/* Length of the well-formed UTF-8 sequence at p (2-4), or 0 if it is not one (RFC 3629 table 3.1). */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned char c = p[0];
    size_t len = (c >= 0xc2 && c <= 0xdf) ? 2 : (c >= 0xe0 && c <= 0xef) ? 3 : (c >= 0xf0 && c <= 0xf4) ? 4 : 0;
    if (len == 0 || len > avail)
        return 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    /* Overlong three- and four-byte forms, UTF-16 surrogates, and past U+10FFFF. */
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
        (c == 0xf4 && p[1] > 0x8f))
        return 0;
    /* C1 controls (U+0080-U+009F, as C2 80-C2 9F): some terminals act on them like ESC sequences. */
    if (c == 0xc2 && p[1] < 0xa0)
        return 0;
    return len;
}

/* Whether the ASCII byte c prints as itself. */
static int ascii_plain(unsigned char c, unsigned flags)
{
    if (c < 0x20 || c == 0x7f)
        return 0;
    if ((flags & SG_ESC_FIELD) && (c == ' ' || c == '"' || c == '\\'))
        return 0;
    return 1;
}

int sg_escape_needed(const char *in, size_t n, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)in;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            if (!ascii_plain(p[i], flags))
                return 1;
            i++;
            continue;
        }
        size_t len = utf8_seq(p + i, n - i);
        if (len == 0)
            return 1;
        i += len;
    }
    return 0;
}

size_t sg_escape(char *out, size_t cap, const char *in, size_t n, unsigned flags)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        char esc[4];
        size_t elen = 0;
        size_t take = 1;
        if (c < 0x80) {
            if (ascii_plain(c, flags)) {
                esc[0] = (char)c;
                elen = 1;
            } else if (c == '\n' || c == '\r' || c == '\t') {
                esc[0] = '\\';
                esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
                elen = 2;
            }
        } else {
            take = utf8_seq(p + i, n - i);
            if (take > 0) {
                /* Copied whole or not at all, so a cut never leaves half a character. */
                if (o + take >= cap)
                    break;
                memcpy(out + o, p + i, take);
                o += take;
                i += take;
                continue;
            }
            take = 1;
        }
        if (elen == 0) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[c >> 4];
            esc[3] = hex[c & 15];
            elen = 4;
        }
        if (o + elen >= cap)
            break;
        memcpy(out + o, esc, elen);
        o += elen;
        i += take;
    }
    out[o] = '\0';
    return o;
}

void sg_escape_fputline(FILE *f, const char *fmt, ...)
{
    char msg[2048], line[4 * sizeof(msg) + 2];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = sg_escape(line, sizeof(line) - 1, msg, SG_MIN((size_t)n, sizeof(msg) - 1), 0);
    line[len++] = '\n';
    fwrite(line, 1, len, f);
}
