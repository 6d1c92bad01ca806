/* h1.h: the HTTP/1.1 server side on a downstream connection. */
#ifndef SG_H1_H
#define SG_H1_H

#include "http/conn.h"

/* Makes c speak HTTP/1.1 as a server. Returns 0 or -ENOMEM. */
int sg_h1_attach(sg_conn_t *c);

/* Writes a complete error response with a one-line body and closes the connection after it. */
void sg_h1_send_error(sg_conn_t *c, int status, const char *body);

#endif
