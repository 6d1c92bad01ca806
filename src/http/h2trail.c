/* h2trail.c: HTTP/2 response trailers copied into one block of nghttp2 name/value pairs. */
#include "http/h2trail.h"

#include <stdlib.h>
#include <string.h>

static bool dropped(sg_str_t name)
{
    return name.n == 0 || name.p[0] == ':' || sg_str_ieq_lit(name, "connection") ||
           sg_str_ieq_lit(name, "keep-alive") || sg_str_ieq_lit(name, "proxy-connection") ||
           sg_str_ieq_lit(name, "transfer-encoding") || sg_str_ieq_lit(name, "upgrade") ||
           sg_str_ieq_lit(name, "te") || sg_str_ieq_lit(name, "content-length");
}

sg_h2_trailers_t *sg_h2_trailers_new(const sg_h1_header_t *hdrs, size_t n)
{
    size_t k = 0, bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (dropped(hdrs[i].name))
            continue;
        k++;
        bytes += hdrs[i].name.n + hdrs[i].value.n;
    }
    sg_h2_trailers_t *t = malloc(sizeof(*t) + k * sizeof(nghttp2_nv) + bytes + 1);
    if (t == NULL)
        return NULL;
    char *p = (char *)&t->nv[k];
    t->n = 0;
    for (size_t i = 0; i < n; i++) {
        sg_str_t name = hdrs[i].name, value = hdrs[i].value;
        if (dropped(name))
            continue;
        nghttp2_nv *nv = &t->nv[t->n++];
        for (size_t j = 0; j < name.n; j++)
            p[j] = sg_lower(name.p[j]);
        nv->name = (uint8_t *)p;
        nv->namelen = name.n;
        p += name.n;
        if (value.n > 0)
            memcpy(p, value.p, value.n);
        nv->value = (uint8_t *)p;
        nv->valuelen = value.n;
        p += value.n;
        nv->flags = NGHTTP2_NV_FLAG_NONE;
    }
    return t;
}
