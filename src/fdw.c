/*-------------------------------------------------------------------------
 *
 * fdw.c
 *	  The "streaming" foreign-data wrapper.  Every source is a foreign table
 *	  of this FDW, so it has a real relation that queries name, that \d
 *	  shows, that GRANT governs and that pg_depend protects.
 *
 * Inside a micro-batch the engine decodes the batch's input into a
 * tuplestore and registers it here; the scan returns those rows.  Outside
 * a batch a scan peeks: it returns up to streaming.peek_rows rows of the
 * input present now, consuming nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "source.h"
#include "streaming.h"

PG_FUNCTION_INFO_V1(streaming_fdw_handler);
PG_FUNCTION_INFO_V1(streaming_fdw_validator);

/* the batch input of each source read by the running micro-batch */
typedef struct BatchInput
{
	Oid			relid;
	Tuplestorestate *rows;
} BatchInput;

static List *batch_inputs = NIL;	/* in TopTransactionContext's child */

typedef struct StreamingScanState
{
	Tuplestorestate *rows;
	int			readptr;
	bool		peeking;
	TupleTableSlot *minslot;	/* the tuplestore holds minimal tuples, the
								 * retracted ones with a mark after the
								 * source's columns */
} StreamingScanState;

/*
 * FdwSetBatchInput makes scans of relid return rows until
 * FdwClearBatchInput.
 */
void
FdwSetBatchInput(Oid relid, Tuplestorestate *rows)
{
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	BatchInput *bi = palloc(sizeof(BatchInput));

	bi->relid = relid;
	bi->rows = rows;
	batch_inputs = lappend(batch_inputs, bi);
	MemoryContextSwitchTo(old);
}

void
FdwClearBatchInput(void)
{
	list_free_deep(batch_inputs);
	batch_inputs = NIL;
}

Tuplestorestate *
FdwGetBatchInput(Oid relid)
{
	ListCell   *lc;

	foreach(lc, batch_inputs)
	{
		BatchInput *bi = lfirst(lc);

		if (bi->relid == relid)
			return bi->rows;
	}
	return NULL;
}

static void
streamingGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	Tuplestorestate *rows = FdwGetBatchInput(foreigntableid);

	/* a batch's size is known when its statement is planned */
	baserel->rows = rows ? Max(tuplestore_tuple_count(rows), 1) : 1000;
}

static void
streamingGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	Cost		total = baserel->rows * cpu_tuple_cost;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 0, total, NIL, NULL, NULL,
#if PG_VERSION_NUM >= 170000
									 NIL,
#endif
									 NIL));
}

static ForeignScan *
streamingGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
						ForeignPath *best_path, List *tlist, List *scan_clauses,
						Plan *outer_plan)
{
	/* every qual is checked locally by the executor */
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, baserel->relid,
							NIL, NIL, NIL, NIL, outer_plan);
}

/*
 * peek_rows decodes up to streaming.peek_rows rows of the source's present
 * input, for a SELECT outside a micro-batch.
 */
static Tuplestorestate *
peek_rows(Relation rel)
{
	SourceBatch batch;
	char	   *kind;
	Oid			reader;
	int			reader_sec_context;

	memset(&batch, 0, sizeof(batch));
	if (!SourceLookup(RelationGetRelid(rel), &batch.name, &kind, &batch.options))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("foreign table \"%s\" is not a registered source",
						RelationGetRelationName(rel)),
				 errhint("Create sources with streaming.create_source().")));
	batch.routine = SourceRoutineByKind(kind);
	if (batch.routine == NULL || batch.routine->peek == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("source \"%s\" cannot be read outside a micro-batch", batch.name),
				 errhint("Run a continuous query over it with streaming.run().")));
	batch.relid = RelationGetRelid(rel);
	batch.rel = rel;
	batch.mcxt = CurrentMemoryContext;
	batch.keep_dead_letters = false;
	SourceBatchReset(&batch);
	/* decoded with the source owner's rights, as in a batch (batch.c) */
	GetUserIdAndSecContext(&reader, &reader_sec_context);
	SetUserIdAndSecContext(rel->rd_rel->relowner, reader_sec_context |
						   SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	batch.routine->peek(&batch, streaming_peek_rows);
	SetUserIdAndSecContext(reader, reader_sec_context);
	if (batch.n_dead_letters > 0)
		ereport(NOTICE,
				(errmsg("%lld records of source \"%s\" could not be decoded",
						(long long) batch.n_dead_letters, batch.name)));
	return batch.rows;
}

static void
streamingBeginForeignScan(ForeignScanState *node, int eflags)
{
	StreamingScanState *state;
	Relation	rel = node->ss.ss_currentRelation;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	state = palloc0(sizeof(StreamingScanState));
	state->rows = FdwGetBatchInput(RelationGetRelid(rel));
	if (state->rows == NULL)
	{
		state->rows = peek_rows(rel);
		state->peeking = true;
	}
	state->readptr = tuplestore_alloc_read_pointer(state->rows, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(state->rows, state->readptr);
	tuplestore_rescan(state->rows);
	state->minslot = MakeSingleTupleTableSlot(SourceRetractionDesc(RelationGetDescr(rel)),
											  &TTSOpsMinimalTuple);
	node->fdw_state = state;
}

static TupleTableSlot *
streamingIterateForeignScan(ForeignScanState *node)
{
	StreamingScanState *state = node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	int			natts = slot->tts_tupleDescriptor->natts;

	/*
	 * The scan slot of a foreign table holds heap tuples; hand it the
	 * stored row's values as a virtual tuple, without copying the row.
	 */
	MemoryContext old;
	bool		found;

	ExecClearTuple(slot);
	tuplestore_select_read_pointer(state->rows, state->readptr);

	/*
	 * A tuplestore that spilled to disk reads each row into the current
	 * memory context and lets the slot free it at the next row: read in
	 * the slot's own context, which lives as long as the scan.
	 */
	old = MemoryContextSwitchTo(state->minslot->tts_mcxt);
	found = tuplestore_gettupleslot(state->rows, true, false, state->minslot);
	MemoryContextSwitchTo(old);
	if (!found)
		return slot;
	slot_getallattrs(state->minslot);
	memcpy(slot->tts_values, state->minslot->tts_values, natts * sizeof(Datum));
	memcpy(slot->tts_isnull, state->minslot->tts_isnull, natts * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	/* a row without the mark (stored with the source's columns only) reads it as NULL */
	if (!state->minslot->tts_isnull[natts] && DatumGetBool(state->minslot->tts_values[natts]))
		ItemPointerSet(&slot->tts_tid, SOURCE_RETRACTED_BLOCK, SOURCE_RETRACTED_OFFSET);
	else
		ItemPointerSetInvalid(&slot->tts_tid);
	return slot;
}

static void
streamingReScanForeignScan(ForeignScanState *node)
{
	StreamingScanState *state = node->fdw_state;

	tuplestore_select_read_pointer(state->rows, state->readptr);
	tuplestore_rescan(state->rows);
}

static void
streamingEndForeignScan(ForeignScanState *node)
{
	StreamingScanState *state = node->fdw_state;

	if (state == NULL)
		return;
	ExecDropSingleTupleTableSlot(state->minslot);
	if (state->peeking)
		tuplestore_end(state->rows);
}

static void
streamingExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	Relation	rel = node->ss.ss_currentRelation;
	Tuplestorestate *rows = FdwGetBatchInput(RelationGetRelid(rel));

	ExplainPropertyText("Streaming Input",
						rows ? "micro-batch" : "peek", es);
}

Datum
streaming_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = streamingGetForeignRelSize;
	routine->GetForeignPaths = streamingGetForeignPaths;
	routine->GetForeignPlan = streamingGetForeignPlan;
	routine->BeginForeignScan = streamingBeginForeignScan;
	routine->IterateForeignScan = streamingIterateForeignScan;
	routine->ReScanForeignScan = streamingReScanForeignScan;
	routine->EndForeignScan = streamingEndForeignScan;
	routine->ExplainForeignScan = streamingExplainForeignScan;

	PG_RETURN_POINTER(routine);
}

/*
 * streaming_fdw_validator: a source's settings live in streaming.sources
 * (create_source validates them), so the wrapper and the foreign tables
 * take no options.  A foreign server of the wrapper, and a user mapping
 * for it, may hold the Kafka connection settings that several sources
 * and sinks share (bootstrap_servers and kafka.* options), the secrets in
 * the user mapping, where PostgreSQL shows them only to the mapped role
 * and the server's owner.  The validator runs as the role that creates or
 * alters the server or mapping: its rights decide which librdkafka
 * properties it may set (KafkaCheckOptions).
 */
Datum
streaming_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	Jsonb	   *jsonb;
	ListCell   *lc;

	if (options == NIL)
		PG_RETURN_VOID();
	if (catalog != ForeignServerRelationId && catalog != UserMappingRelationId)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the streaming foreign-data wrapper takes options only on servers and user mappings"),
				 errhint("Set a source's options with streaming.create_source().")));
	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, "bootstrap_servers") != 0 && !KafkaIsPassthroughKey(def->defname))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for a server of the streaming foreign-data wrapper",
							def->defname),
					 errhint("A server or user mapping holds Kafka settings: bootstrap_servers and kafka.* options.")));
	}
	jsonb = SourceOptionsFromDefElems(options);
	KafkaCheckOptions(jsonb, catalog == UserMappingRelationId ? KAFKA_IN_USER_MAPPING : KAFKA_IN_SERVER,
					  GetUserId());
	KafkaCheckSettings(jsonb);
	PG_RETURN_VOID();
}
