#ifndef CSQLITE3_SHIM_H
#define CSQLITE3_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro cast and does not import. */
static inline sqlite3_destructor_type csqlite3_transient(void) { return SQLITE_TRANSIENT; }
#endif
