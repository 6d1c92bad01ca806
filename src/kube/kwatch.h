/* kwatch.h: the watch stream's codec: bytes (split anywhere by chunks and reads) into complete newline-ended JSON
 * lines, and a line into a watch event (type, object, resourceVersion, in-band Status). Pure: no I/O. */
#ifndef SG_KWATCH_H
#define SG_KWATCH_H

#include "kube/kjson.h"
#include "core/sg.h"

struct fy_document;
struct fy_node;

#define SG_KWATCH_MAX_LINE (16u << 20) /* one event may not be larger (a Secret or ConfigMap is at most 1 MiB) */

/* Reassembles lines. The buffer grows to the longest line seen (bounded by max_line). */
typedef struct sg_kframer {
    char *buf;
    size_t off, len, cap; /* unread bytes are buf[off..len) */
    size_t scanned;       /* bytes after off already known to hold no '\n' */
    size_t max_line;
} sg_kframer_t;

void sg_kframer_init(sg_kframer_t *f, size_t max_line);
void sg_kframer_free(sg_kframer_t *f);
/* Drops whatever is buffered (a new watch starts clean). */
void sg_kframer_reset(sg_kframer_t *f);
/* Appends bytes. Returns 0, -ENOMEM, or -EMSGSIZE when an unfinished line passes max_line (the stream must be
 * dropped: the framer is then reset). */
int sg_kframer_push(sg_kframer_t *f, const char *p, size_t n);
/* The next complete line, without its "\n" (or "\r\n"); empty lines are skipped. The slice is valid until the next
 * push. Returns 1 with *line set, or 0 when no complete line is buffered. */
int sg_kframer_next(sg_kframer_t *f, sg_str_t *line);
/* Bytes of an unfinished line held. */
size_t sg_kframer_pending(const sg_kframer_t *f);

typedef enum sg_kev_type {
    SG_KEV_ADDED = 0,
    SG_KEV_MODIFIED,
    SG_KEV_DELETED,
    SG_KEV_BOOKMARK,
    SG_KEV_ERROR,
} sg_kev_type_t;

/* One decoded event. Strings and nodes point into doc, which the event owns, and doc into the decoded line, which
 * must outlive the event. */
typedef struct sg_kevent {
    sg_kev_type_t type;
    sg_kjson_t doc;
    uint32_t object;          /* the object's node (ERROR: the Status) */
    const char *rv;           /* object.metadata.resourceVersion, or NULL */
    int code;                 /* ERROR: Status.code (410 for Expired/Gone), else 0 */
    const char *reason;       /* ERROR: Status.reason, or NULL */
    const char *message;      /* ERROR: Status.message, or NULL */
} sg_kevent_t;

/* Decodes one line (JSON). Returns 0, SG_EBADMSG (not JSON, no known type, no object mapping) or -ENOMEM. */
int sg_kwatch_decode(const char *line, size_t len, sg_kevent_t *ev);
void sg_kevent_free(sg_kevent_t *ev);
/* True for an ERROR whose Status means the resourceVersion is too old (410 Expired / Gone): relist. */
bool sg_kevent_expired(const sg_kevent_t *ev);
/* Parses JSON text into a document (NULL if it is not JSON). The text is copied. */
struct fy_document *sg_kwatch_parse_json(const char *text, size_t len);
/* The same with more libfyaml parse flags (FYPCF_*). */
struct fy_document *sg_kwatch_parse_json_ex(const char *text, size_t len, unsigned flags);

#endif
