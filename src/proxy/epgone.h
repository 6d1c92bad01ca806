/* epgone.h: SSE streams whose endpoint left the config (SSEPolicy onEndpointRemoved). */
#ifndef SG_EPGONE_H
#define SG_EPGONE_H

#include "config/config.h"
#include "core/worker.h"

/*
 * The worker adopted generation next (w->cfg). Each live SSE stream whose rule's SSEPolicy (the one in force in
 * next for the same route and rule, else the stream's own) says
 * onEndpointRemoved: Close and whose endpoint (by address and port) is no longer an endpoint of its backend
 * (the same Service name, namespace and port) in next gets an end at a random moment in the second half of
 * `after`, at an event
 * boundary, with a retry: hint, as a drain ends it; a stream whose endpoint is back before that moment keeps
 * running. Streams of other kinds, and streams whose rule says Keep (the default), are left alone.
 */
void sg_epgone_adopted(sg_worker_t *w, const sg_config_t *next);

#endif
