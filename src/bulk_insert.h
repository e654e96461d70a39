/*-------------------------------------------------------------------------
 *
 * bulk_insert.h
 *	  A stateless query's rows written to its result table in bulk.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_BULK_INSERT_H
#define STREAMING_BULK_INSERT_H

#include "nodes/pg_list.h"
#include "tcop/dest.h"

extern bool BulkInsertApplies(Oid result, Oid input, List *columns);
extern DestReceiver *BulkInsertReceiverCreate(Oid result);
extern uint64 BulkInsertReceiverRows(DestReceiver *dest);

#endif
