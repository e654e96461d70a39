/*-------------------------------------------------------------------------
 *
 * bulk_insert.c
 *	  A stateless query's rows written to its result table in bulk, as
 *	  COPY FROM writes them.
 *
 * A stateless query's batch statement is a plain INSERT of the rows of its
 * input view (BuildBatchStatement).  The executor inserts them a row at a
 * time: heap_insert finds, pins and locks the target page and writes a WAL
 * record for each row.  COPY FROM buffers rows and writes each page's worth
 * with one call (table_multi_insert): the page is kept pinned between rows
 * (a BulkInsertState) and a page's rows go into one WAL record.
 *
 * When nothing could tell the two apart, a batch runs the SELECT of its
 * input alone, and this receiver writes its rows as COPY FROM does: it
 * checks the table's constraints on each row (ExecConstraints), writes the
 * rows in buffers of up to BULK_ROWS rows or BULK_BYTES bytes, then their
 * index entries (ExecInsertIndexTuples), with the errors an INSERT raises
 * (whose context names the SELECT).  Nothing could tell them apart when
 * the result table is an ordinary table (not a partition, not partitioned,
 * not foreign) without triggers (which foreign keys and deferrable
 * constraints use too), rules or row-level security; whose columns are the
 * input's, in order, of the same types and typmods (no coercion), under
 * the names the INSERT gives (none renamed), none generated or an
 * identity; into which the query's owner may insert, and which he may read
 * (the errors of a constraint show the row then, as the INSERT's show the
 * columns it inserts), in a schema he may use (the INSERT names it).  And
 * no volatile function must be called by the query (through the views it
 * reads too) or a CHECK constraint: such a function may read the table,
 * and see there the rows written before, which the INSERT writes one at a
 * time but this receiver a buffer at a time.  Otherwise the INSERT runs as
 * before (BulkInsertApplies).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "optimizer/optimizer.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "bulk_insert.h"
#include "streaming.h"

/* as COPY FROM buffers (copyfrom.c) */
#define BULK_ROWS	1000
#define BULK_BYTES	65535

typedef struct BulkInsertReceiver
{
	DestReceiver pub;
	Relation	rel;
	ResultRelInfo *rri;
	EState	   *estate;
	BulkInsertState bistate;
	CommandId	cid;
	TupleDesc	desc;			/* the slots' (see bulk_receive) */
	TupleTableSlot *slots[BULK_ROWS];
	int			nslots;			/* made so far */
	int			nbuffered;		/* holding a row */
	Size		bytes;			/* about what they hold */
	MemoryContext cxt;			/* reset at each write */
	uint64		rows;			/* written */
} BulkInsertReceiver;

/* view_calls_volatile: whether a view WalkViewReads visits calls one */
static bool
view_calls_volatile(Oid relid, Query *view_query, void *arg)
{
	return view_query != NULL && contain_volatile_functions_not_nextval((Node *) view_query);
}

/*
 * calls_volatile tells whether the rows of the view input, or the CHECK
 * constraints of rel, call a volatile function (nextval aside, which
 * reads no table).
 */
static bool
calls_volatile(Relation rel, Relation input)
{
	TupleConstr *constr = RelationGetDescr(rel)->constr;

	for (int i = 0; constr != NULL && i < constr->num_check; i++)
	{
		if (contain_volatile_functions_not_nextval(stringToNode(constr->check[i].ccbin)))
			return true;
	}
	return WalkViewReads(RelationGetRelid(input), view_calls_volatile, NULL);
}

/*
 * BulkInsertApplies tells whether the rows of the relation (view) input,
 * inserted by an INSERT that runs as the current user into result's
 * columns (the list of their names, in order), may be written by this
 * receiver instead (see the top of the file).  Both keep the locks the
 * INSERT would take, until the end of the transaction: nothing changes
 * them before the rows are written.
 */
bool
BulkInsertApplies(Oid result, Oid input, List *columns)
{
	Relation	rel;
	Relation	in;
	TupleDesc	desc;
	TupleDesc	indesc;
	bool		ok;

	rel = table_open(result, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	ok = rel->rd_rel->relkind == RELKIND_RELATION && !rel->rd_rel->relispartition &&
		!rel->rd_rel->relhastriggers && rel->trigdesc == NULL &&
		!rel->rd_rel->relhasrules && rel->rd_rules == NULL && !rel->rd_rel->relrowsecurity &&
		desc->natts == list_length(columns) &&
		pg_class_aclcheck(result, GetUserId(), ACL_INSERT) == ACLCHECK_OK &&
		pg_class_aclcheck(result, GetUserId(), ACL_SELECT) == ACLCHECK_OK &&
#if PG_VERSION_NUM >= 160000
		object_aclcheck(NamespaceRelationId, RelationGetNamespace(rel), GetUserId(), ACL_USAGE) == ACLCHECK_OK;
#else
		pg_namespace_aclcheck(RelationGetNamespace(rel), GetUserId(), ACL_USAGE) == ACLCHECK_OK;
#endif
	if (ok)
	{
		in = relation_open(input, AccessShareLock);
		indesc = RelationGetDescr(in);
		ok = desc->natts == indesc->natts;
		for (int i = 0; ok && i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);
			Form_pg_attribute inatt = TupleDescAttr(indesc, i);

			ok = !att->attisdropped && !inatt->attisdropped &&
				strcmp(NameStr(att->attname), (char *) list_nth(columns, i)) == 0 &&
				att->attgenerated == '\0' && att->attidentity == '\0' &&
				att->atttypid == inatt->atttypid &&
				(att->atttypmod < 0 || att->atttypmod == inatt->atttypmod);
		}
		ok = ok && !calls_volatile(rel, in);
		relation_close(in, NoLock);
	}
	table_close(rel, NoLock);
	return ok;
}

/* write_buffered writes the rows buffered, then their index entries */
static void
write_buffered(BulkInsertReceiver *self)
{
	MemoryContext old;

	if (self->nbuffered == 0)
		return;
	old = MemoryContextSwitchTo(self->cxt);
	table_multi_insert(self->rel, self->slots, self->nbuffered, self->cid, 0, self->bistate);
	for (int i = 0; i < self->nbuffered; i++)
	{
		if (self->rri->ri_NumIndices > 0)
		{
			List	   *recheck;

#if PG_VERSION_NUM >= 160000
			recheck = ExecInsertIndexTuples(self->rri, self->slots[i], self->estate,
											false, false, NULL, NIL, false);
#else
			recheck = ExecInsertIndexTuples(self->rri, self->slots[i], self->estate,
											false, false, NULL, NIL);
#endif
			/* only deferred constraints recheck, and they have triggers */
			Assert(recheck == NIL);
			list_free(recheck);
		}
		ExecClearTuple(self->slots[i]);
		ResetPerTupleExprContext(self->estate);
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(self->cxt);
	self->rows += self->nbuffered;
	self->nbuffered = 0;
	self->bytes = 0;
}

static void
bulk_startup(DestReceiver *dest, int operation, TupleDesc typeinfo)
{
	BulkInsertReceiver *self = (BulkInsertReceiver *) dest;

	if (typeinfo->natts != RelationGetDescr(self->rel)->natts)
		elog(ERROR, "the rows to write in bulk do not match the columns of \"%s\"",
			 RelationGetRelationName(self->rel));
	/*
	 * The command the statement runs in (SPI advances the command counter
	 * before it): its own snapshot does not see the rows written, as an
	 * INSERT's does not.
	 */
	self->cid = GetCurrentCommandId(true);
}

static bool
bulk_receive(TupleTableSlot *slot, DestReceiver *dest)
{
	BulkInsertReceiver *self = (BulkInsertReceiver *) dest;
	TupleTableSlot *buffered;

	/*
	 * The slots share a copy of the table's descriptor, which is not
	 * reference-counted: a thousand pins of the table's own would each be
	 * remembered by the resource owner, whose hash of equal pointers makes
	 * every one cost as many probes as there are before it.
	 */
	if (self->nbuffered == self->nslots)
	{
		MemoryContext old = MemoryContextSwitchTo(self->estate->es_query_cxt);

		if (self->desc == NULL)
			self->desc = CreateTupleDescCopy(RelationGetDescr(self->rel));
		self->slots[self->nslots++] = MakeSingleTupleTableSlot(self->desc, table_slot_callbacks(self->rel));
		MemoryContextSwitchTo(old);
	}
	buffered = self->slots[self->nbuffered];
	ExecCopySlot(buffered, slot);
	/* as INSERT checks a row, before it is written */
	if (self->rel->rd_att->constr != NULL)
		ExecConstraints(self->rri, buffered, self->estate);
	ResetPerTupleExprContext(self->estate);
	self->nbuffered++;
	/* a heap table's slot holds a copy of the row, in a heap tuple */
	if (TTS_IS_HEAPTUPLE(buffered) || TTS_IS_BUFFERTUPLE(buffered))
		self->bytes += ((HeapTupleTableSlot *) buffered)->tuple->t_len;
	if (self->nbuffered == BULK_ROWS || self->bytes >= BULK_BYTES)
		write_buffered(self);
	return true;
}

static void
bulk_shutdown(DestReceiver *dest)
{
	write_buffered((BulkInsertReceiver *) dest);
}

static void
bulk_destroy(DestReceiver *dest)
{
	BulkInsertReceiver *self = (BulkInsertReceiver *) dest;

	for (int i = 0; i < self->nslots; i++)
		ExecDropSingleTupleTableSlot(self->slots[i]);
	ExecCloseIndices(self->rri);
	table_finish_bulk_insert(self->rel, 0);
	FreeBulkInsertState(self->bistate);
	FreeExecutorState(self->estate);
	table_close(self->rel, NoLock);
	pfree(self);
}

/*
 * BulkInsertReceiverCreate returns a receiver that writes the rows it is
 * sent into result (when BulkInsertApplies), as the current user, in the
 * command of the statement that sends them.  BulkInsertReceiverRows tells
 * how many it wrote, once that statement has ended.
 */
DestReceiver *
BulkInsertReceiverCreate(Oid result)
{
	BulkInsertReceiver *self = palloc0(sizeof(BulkInsertReceiver));

	self->pub.receiveSlot = bulk_receive;
	self->pub.rStartup = bulk_startup;
	self->pub.rShutdown = bulk_shutdown;
	self->pub.rDestroy = bulk_destroy;
	/* not DestNone, whose rows SPI would call discarded */
	self->pub.mydest = DestTuplestore;
	self->rel = table_open(result, RowExclusiveLock);
	self->estate = CreateExecutorState();
	self->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(self->rri, self->rel, 0, NULL, 0);
	ExecOpenIndices(self->rri, false);
	self->bistate = GetBulkInsertState();
	self->cxt = AllocSetContextCreate(CurrentMemoryContext, "bulk insert", ALLOCSET_DEFAULT_SIZES);
	return (DestReceiver *) self;
}

uint64
BulkInsertReceiverRows(DestReceiver *dest)
{
	return ((BulkInsertReceiver *) dest)->rows;
}
