/* escape.h: making bytes from outside (requests, config values, peers) safe to print on one log line. */
#ifndef SG_ESCAPE_H
#define SG_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

#include "core/sg.h"

/* Also escape ' ', '"' and '\\' (as \x20, \x22, \x5c): for unquoted key=value fields such as the access
 * log's, so that a value can neither end its field early nor forge the next one. */
#define SG_ESC_FIELD 1u

/*
 * Copies n bytes of in to out (cap bytes, NUL-terminated when cap > 0) with every byte that could change
 * how a line reads written as text: \n, \r, \t, \\x1b-style \xHH for the other C0 controls and DEL, the C1
 * controls (U+0080-U+009F), and each byte that is not part of well-formed UTF-8 (RFC 3629: no overlong
 * forms, surrogates or code points past U+10FFFF). Well-formed printable UTF-8 passes through unchanged.
 * Output that does not fit is cut before an escape or a character, never inside one.
 * Returns the length written (without the NUL).
 */
size_t sg_escape(char *out, size_t cap, const char *in, size_t n, unsigned flags);

/* Nonzero when sg_escape would change something in the n bytes at in. */
int sg_escape_needed(const char *in, size_t n, unsigned flags);

/* Formats one message (no newline in fmt), escapes all of it (sg_escape, flags 0) and writes it to f as one
 * line. For messages that quote input, such as the config's FILE:LINE:COL lines: what a value holds cannot
 * split the line. A message past 2 KiB is cut. */
void sg_escape_fputline(FILE *f, const char *fmt, ...) SG_PRINTF(2, 3);

#endif
