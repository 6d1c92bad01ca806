/* kjson.h: a strict JSON (RFC 8259) parser into one flat array of nodes, and a compact emitter that can leave
 * members out. Built for the Kubernetes watch path, where each event is parsed once, stripped and written back
 * as text (kube/kstore.c): no node is allocated on its own, and nothing is copied but the decoded scalars.
 *
 * Nodes are stored in document order from index 1 (0 means "none"). A container's children follow it; a
 * node's subtree ends at node[i].end, which is also where its next sibling starts. An object's children
 * alternate key and value. */
#ifndef SG_KJSON_H
#define SG_KJSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum sg_kjson_type {
    SG_KJSON_NULL = 1,
    SG_KJSON_FALSE,
    SG_KJSON_TRUE,
    SG_KJSON_NUMBER,
    SG_KJSON_STRING,
    SG_KJSON_ARRAY,
    SG_KJSON_OBJECT,
} sg_kjson_type_t;

#define SG_KJSON_DROP 1u /* flags: sg_kjson_emit leaves this member (its key node) or element out */

#define SG_KJSON_MAX_DEPTH 256u /* deeper nesting is refused */

typedef struct sg_kjson_node {
    uint8_t type;
    uint8_t flags;
    uint32_t end;      /* index after the subtree */
    uint32_t off, len; /* raw text in the source (a string with its quotes) */
    uint32_t str;      /* scalars: offset of the decoded NUL-terminated text in strs */
    uint32_t slen;     /* scalars: its length (a string may hold \u0000) */
} sg_kjson_node_t;

typedef struct sg_kjson {
    const char *text; /* the source: the caller keeps it alive while the document is used */
    sg_kjson_node_t *n;
    uint32_t count, cap; /* nodes used (n[0] unused), allocated */
    char *strs;          /* decoded scalars */
    size_t strs_len, strs_cap;
} sg_kjson_t;

/* Parses text[0..len) (which need not be NUL-terminated and must outlive d). Returns 0, SG_EBADMSG (not
 * JSON: bad syntax, invalid UTF-8, a lone surrogate, a duplicate key, nesting deeper than SG_KJSON_MAX_DEPTH, or
 * text longer than 2^31 bytes) or -ENOMEM. On error d holds nothing to free. */
int sg_kjson_parse(sg_kjson_t *d, const char *text, size_t len);
void sg_kjson_free(sg_kjson_t *d);

static inline int sg_kjson_type(const sg_kjson_t *d, uint32_t i)
{
    return i ? d->n[i].type : 0;
}

/* The first child (array element, or object key), or 0. */
static inline uint32_t sg_kjson_first(const sg_kjson_t *d, uint32_t i)
{
    return i && d->n[i].end > i + 1 ? i + 1 : 0;
}

/* The element after i in array a, or 0. */
static inline uint32_t sg_kjson_next_elem(const sg_kjson_t *d, uint32_t a, uint32_t i)
{
    return d->n[i].end < d->n[a].end ? d->n[i].end : 0;
}

/* The key after key k in object o, or 0. The value of key k is k + 1. */
static inline uint32_t sg_kjson_next_key(const sg_kjson_t *d, uint32_t o, uint32_t k)
{
    return d->n[k + 1].end < d->n[o].end ? d->n[k + 1].end : 0;
}

/* A scalar's decoded text (a string unescaped; a number, true or false as written), or NULL for null and for
 * containers. */
const char *sg_kjson_scalar(const sg_kjson_t *d, uint32_t i);

/* True when scalar i's decoded text is exactly s. */
bool sg_kjson_is(const sg_kjson_t *d, uint32_t i, const char *s);

/* The key node of key in object o (0 when o is not an object or has no such key). */
uint32_t sg_kjson_key(const sg_kjson_t *d, uint32_t o, const char *key);

/* The value of key in object o, or 0. */
static inline uint32_t sg_kjson_get(const sg_kjson_t *d, uint32_t o, const char *key)
{
    uint32_t k = sg_kjson_key(d, o, key);
    return k ? k + 1 : 0;
}

/* The value of key in object o when it has the given type, else 0. */
uint32_t sg_kjson_get_type(const sg_kjson_t *d, uint32_t o, const char *key, int type);

/* The decoded text of a scalar member of o (NULL when absent, null or not a scalar). */
const char *sg_kjson_get_str(const sg_kjson_t *d, uint32_t o, const char *key);

/* Writes node i as compact JSON ("key": value, items joined by ", "), leaving out members and elements flagged
 * SG_KJSON_DROP. prefix, when not NULL, is raw JSON written first inside object i (members, without braces),
 * e.g. "\"kind\": \"Service\"". Returns a malloc'd NUL-terminated string (*len set) or NULL when out of memory. */
char *sg_kjson_emit(const sg_kjson_t *d, uint32_t i, const char *prefix, size_t *len);

#endif
