/*-------------------------------------------------------------------------
 *
 * streaming.c
 *	  Module entry point of the streaming extension: GUCs and start-up.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "streaming.h"

PG_MODULE_MAGIC;

int			streaming_peek_rows = 100;
int			streaming_progress_retention = 1000;

void		_PG_init(void);

/*
 * _PG_init declares the GUCs.  Background workers are registered here when
 * the library is preloaded.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("streaming.peek_rows",
							"Rows a plain SELECT on a source returns outside a micro-batch.",
							"A SELECT on a source outside streaming.run() or a query worker "
							"shows up to this many rows of the input that is present now.",
							&streaming_peek_rows,
							100, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("streaming.progress_retention",
							"Progress rows kept per query in streaming.progress.",
							"Each batch deletes the progress rows of its query that are more "
							"than this many batches old; 0 keeps them all.",
							&streaming_progress_retention,
							1000, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("streaming");
}
