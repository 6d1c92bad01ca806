/* h1parse.h: strict HTTP/1.1 message head parser and chunked codec (RFC 9112). Pure: no I/O, no allocation. */
#ifndef SG_H1PARSE_H
#define SG_H1PARSE_H

#include "core/sg.h"

#define SG_H1_MAX_HEADERS 100           /* more fields: SG_EHDRTOOBIG (431) */
#define SG_H1_MAX_HEAD_BYTES (16 * 1024) /* header section larger: SG_EHDRTOOBIG (431) */
#define SG_H1_MAX_REQLINE 8192          /* request line longer: SG_ETOOLONG (414) */
#define SG_H1_MAX_CONTENT_LENGTH ((UINT64_C(1) << 53) - 1) /* larger Content-Length: SG_EBADMSG */
#define SG_H1_MAX_CHUNK_LINE 4096       /* chunk-size line with extensions, CRLF excluded */
#define SG_H1_MAX_TRAILER_BYTES 8192    /* trailer section after the last chunk, final CRLF included */

typedef struct sg_h1_header {
    sg_str_t name;  /* token as sent (case kept) */
    sg_str_t value; /* OWS trimmed both sides */
} sg_h1_header_t;

typedef enum sg_h1_body {
    SG_H1_BODY_NONE = 0,  /* no body (request without CL/TE; 1xx/204/304/HEAD response) */
    SG_H1_BODY_LENGTH,    /* content_length bytes follow */
    SG_H1_BODY_CHUNKED,   /* chunked transfer coding */
    SG_H1_BODY_UNTIL_CLOSE, /* responses only: body ends when the connection closes */
} sg_h1_body_t;

/* Common head of requests and responses. Slices point into the caller's buffer. */
typedef struct sg_h1_msg {
    /* request */
    sg_str_t method;
    sg_str_t target;
    /* response */
    int status;
    sg_str_t reason;
    /* both */
    int minor_version;          /* 0 or 1 */
    sg_h1_header_t headers[SG_H1_MAX_HEADERS];
    size_t nheaders;
    size_t head_len;            /* bytes of the head, including the final CRLF CRLF */
    sg_h1_body_t body;
    uint64_t content_length;    /* valid when body == SG_H1_BODY_LENGTH */
    bool keep_alive;            /* after HTTP version and Connection: close / keep-alive */
    bool expect_continue;       /* Expect: 100-continue */
    bool upgrade;               /* Connection: upgrade with an Upgrade header */
    int host_index;             /* index of the single Host header, or -1 */
    const char *error;          /* after a failed parse: why, a static string for logs (NULL otherwise) */
} sg_h1_msg_t;

/*
 * Parses a request head from buf[0..len).
 * Returns the head length (>0) when complete, SG_EINCOMPLETE when more bytes are needed,
 * SG_EBADMSG (400), SG_ETOOLONG (414), SG_EHDRTOOBIG (431) or SG_ENOTIMPL (501: a transfer coding
 * other than chunked). Rejects ambiguous framing: CL with TE, differing or repeated CL, obs-fold,
 * whitespace before the colon, bare CR or LF, invalid token characters, missing or repeated Host in
 * HTTP/1.1. Limits apply to incomplete input too, so a slow sender cannot grow the buffer unbounded.
 * Up to 8 empty lines before the request line are skipped and counted in the returned length.
 * The request line limit counts bytes before its CRLF; the header limit counts the field section
 * after the request line, final CRLF included. Content-Length 0 gives SG_H1_BODY_LENGTH.
 * Each call rescans buf from the start; a caller fed a few bytes at a time should call again only
 * when the new bytes hold a '\n' (a head completes only on one) or a limit may have been passed.
 */
int sg_h1parse_request(const char *buf, size_t len, sg_h1_msg_t *msg);

/*
 * Parses a response head, as strictly as a request: the same field rules (no obs-fold, bare CR/LF, CTLs,
 * whitespace before ':'), the same limits, and is_head_request / the status decide SG_H1_BODY_NONE
 * (RFC 9112 6.3). Returns the head length, SG_EINCOMPLETE, SG_EBADMSG, SG_ENOTIMPL (a transfer coding
 * other than chunked, e.g. "gzip, chunked": we could only relay it as plain bytes), or SG_EHDRTOOBIG when
 * the status line passes SG_H1_MAX_REQLINE or the fields pass the request limits. TE and CL together,
 * repeated or invalid CL, TE in HTTP/1.0, identity or chunked twice: SG_EBADMSG. On any error msg->error
 * says why. 1xx responses parse as complete heads with body NONE; the caller skips them (except 101). A 2xx
 * answer to CONNECT has no body either: the caller knows the method and overrides body. A 1xx or 204 that
 * carries TE or a non-zero CL gets !keep_alive (a body may follow that is not ours to read). No CL and no
 * TE: SG_H1_BODY_UNTIL_CLOSE, which implies !keep_alive.
 */
int sg_h1parse_response(const char *buf, size_t len, bool is_head_request, sg_h1_msg_t *msg);

/* Gives every field of msg but the header array its empty value (no headers, host_index -1, no body), as the parsers
 * do before they fill it: for a message built by hand (HTTP/2) in storage that held another. */
void sg_h1parse_reset(sg_h1_msg_t *msg);

/* Finds a header by name, case-insensitively, starting at index *from (updated past the hit). */
const sg_h1_header_t *sg_h1parse_find(const sg_h1_msg_t *msg, const char *name, size_t *from);

/* Incremental chunked-body decoder. Zero-copy: data slices point into the input. */
/*
 * Chunk extensions may take at most this many bytes over a whole body, beyond as many as the body has
 * data bytes: a peer sending 1-byte chunks with 4 KiB of extensions each would otherwise make us parse
 * 4,000 bytes per byte relayed (Go's net/http has the same rule, CVE-2023-39326).
 */
#define SG_H1_MAX_CHUNK_EXT_OVERHEAD (16 * 1024)

typedef struct sg_h1_chunked {
    int state;
    uint64_t remaining;  /* bytes left in the current chunk */
    size_t line_bytes;   /* bytes of chunk-size line / trailer seen, for limits */
    size_t trailer_bytes;
    uint64_t ext_bytes;  /* chunk-extension bytes so far */
    uint64_t data_bytes; /* chunk-data bytes so far */
    const char *error;   /* after SG_EBADMSG: why, a static string for logs */
} sg_h1_chunked_t;

void sg_h1_chunked_init(sg_h1_chunked_t *d);

/*
 * Consumes bytes from in[0..len) and sets *consumed. When it meets chunk data it returns 1 with
 * *data set to the slice (within in) and stops there; call again with the rest.
 * Returns 0 when all input was consumed with no data yet, 2 when the last chunk and trailers are
 * done (the body is complete; *consumed tells where the next message starts), or SG_EBADMSG on a bad
 * chunk size (non-hex, overflow, over-long line), bare LF/CR, or missing CRLF after data.
 * Sizes must stay below 2^60; chunk-size lines (extensions included) are bounded by SG_H1_MAX_CHUNK_LINE,
 * extensions over the body by SG_H1_MAX_CHUNK_EXT_OVERHEAD plus its data bytes, and trailers by
 * SG_H1_MAX_TRAILER_BYTES. Extensions and trailer fields are validated and dropped. d->error says why.
 * After an error every call returns SG_EBADMSG; after the end every call returns 2 consuming nothing.
 */
int sg_h1_chunked_decode(sg_h1_chunked_t *d, const char *in, size_t len, size_t *consumed, sg_str_t *data);

/* Writes a chunk-size line "%zx\r\n" into out (at least 20 bytes); returns its length. */
size_t sg_h1_chunk_head(char *out, size_t n);

#endif
