/* key.c: which requests may share an SSE stream, and their sharing key (key.h). */
#include <stdlib.h>
#include <string.h>

#include "fanout/key.h"

/* Appends a length-prefixed part, so that ("ab", "c") and ("a", "bc") never make the same key. */
static void put(sg_fkey_t *k, const void *p, size_t n)
{
    uint32_t l = (uint32_t)n;
    if (k->oom)
        return;
    if (k->n + n + 4 > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 256;
        while (cap < k->n + n + 4)
            cap *= 2;
        char *q = realloc(k->p, cap);
        if (q == NULL) {
            k->oom = true;
            return;
        }
        k->p = q;
        k->cap = cap;
    }
    memcpy(k->p + k->n, &l, 4);
    if (n > 0)
        memcpy(k->p + k->n + 4, p, n);
    k->n += n + 4;
}

static bool has_header(const sg_h1_msg_t *msg, const char *name)
{
    size_t from = 0;
    return sg_h1parse_find(msg, name, &from) != NULL;
}

bool sg_fanout_may_share(const sg_rule_t *rule, const sg_h1_msg_t *msg, bool has_body, bool client_cert)
{
    const sg_sse_policy_t *p = rule->ssep;
    /* A WebSocket upgrade is a GET too, but a tunnel of its own (proxy/), never an event stream to share. */
    if (p == NULL || !p->sharing || has_body || !sg_str_eq(msg->method, SG_STR("GET")) || msg->upgrade ||
        msg->target.n == 0 || msg->target.p[0] != '/' || rule->filters.redirect != NULL)
        return false;
    if (p->public_stream)
        return true;
    return !client_cert && !has_header(msg, "authorization") && !has_header(msg, "cookie");
}

uint64_t sg_fanout_key(sg_fkey_t *k, const void *generation, const sg_rule_t *rule, const sg_h1_msg_t *msg)
{
    put(k, &generation, sizeof(generation));
    put(k, &rule, sizeof(rule));
    sg_str_t host = msg->host_index >= 0 ? msg->headers[msg->host_index].value : (sg_str_t){"", 0};
    put(k, host.p, host.n);
    put(k, msg->target.p, msg->target.n);
    for (size_t i = 0; i < rule->ssep->nkey_headers; i++) {
        const char *name = rule->ssep->key_headers[i];
        size_t from = 0, count = 0;
        const sg_h1_header_t *h;
        put(k, name, strlen(name));
        while ((h = sg_h1parse_find(msg, name, &from)) != NULL) {
            put(k, h->value.p, h->value.n);
            count++;
        }
        put(k, &count, sizeof(count));
    }
    if (rule->filters.cors != NULL) {
        size_t from = 0;
        const sg_h1_header_t *h = sg_h1parse_find(msg, "origin", &from);
        put(k, "origin", 6);
        put(k, h ? h->value.p : "", h ? h->value.n : 0);
        put(k, h ? "1" : "0", 1);
    }
    uint64_t x = 1469598103934665603ull;
    for (size_t i = 0; i < k->n && !k->oom; i++)
        x = (x ^ (unsigned char)k->p[i]) * 1099511628211ull;
    return x;
}
