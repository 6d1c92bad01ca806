/* fuzz_grpc.c: libFuzzer harness for the gRPC formats the gateway reads (codec/grpc.c): grpc-timeout, grpc-status and
 * the grpc.health.v1 HealthCheckResponse, each checked against a simple model; and the writers round-tripped. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/grpc.h"

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_grpc: %s\n", what);
        abort();
    }
}

/* Input: byte 0 picks the parser, the rest is its input (copied to an exact-size allocation for ASan). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data + 1, n);
    switch (data[0] % 4) {
    case 0: {
        int64_t ms = -1;
        int rc = sg_grpc_parse_timeout((sg_str_t){(const char *)p, n}, &ms);
        bool digits = n >= 2 && n <= 9;
        for (size_t i = 0; digits && i + 1 < n; i++)
            digits = p[i] >= '0' && p[i] <= '9';
        bool unit = n >= 2 && strchr("HMSmun", p[n - 1]) != NULL && p[n - 1] != '\0';
        check((rc == 0) == (digits && unit), "grpc-timeout accepted what the grammar refuses, or the reverse");
        check(rc != 0 || ms >= 1, "grpc-timeout below 1 ms");
        break;
    }
    case 1: {
        sg_h1_header_t h = {SG_STR("grpc-status"), {(const char *)p, n}};
        int st = sg_grpc_status_of(&h, 1);
        check(st >= -1 && st <= 16, "grpc-status out of range");
        break;
    }
    case 2: {
        int st = sg_grpc_health_response(p, n);
        check(st == SG_EINCOMPLETE || st == SG_EBADMSG || (st >= 0 && st <= 3), "health status out of range");
        if (n >= 5 && st == SG_EINCOMPLETE) {
            size_t len = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
            check(p[0] == 0 && len <= 65536 && n - 5 < len, "incomplete with the whole message present");
        }
        break;
    }
    default: {
        /* Writers: a request for any service fits or says E2BIG; a message is encoded within the buffer. */
        char svc[300];
        size_t sl = n < sizeof(svc) - 1 ? n : sizeof(svc) - 1;
        memcpy(svc, p, sl);
        svc[sl] = '\0';
        uint8_t out[320];
        int rl = sg_grpc_health_request(svc, out, sizeof(out));
        size_t l = strlen(svc);
        check(rl == -E2BIG || (rl >= 5 && (size_t)rl <= sizeof(out)), "health request length");
        if (rl >= 5) {
            size_t body = (size_t)out[1] << 24 | (size_t)out[2] << 16 | (size_t)out[3] << 8 | out[4];
            check(body + 5 == (size_t)rl, "health request prefix");
            check(l == 0 || memcmp(out + rl - l, svc, l) == 0, "health request service bytes");
        }
        sg_h1_header_t h[3];
        char buf[64];
        size_t k = sg_grpc_status_fields(14, svc, true, h, buf, sizeof(buf));
        check(k == 3, "status fields");
        for (size_t i = 0; i < h[2].value.n; i++)
            check(h[2].value.p[i] >= 0x20 && h[2].value.p[i] <= 0x7e, "grpc-message byte not percent-encoded");
        break;
    }
    }
    free(p);
    return 0;
}
