/*-------------------------------------------------------------------------
 *
 * slices.c
 *	  One query on several workers: the slices of a query's input.
 *
 * A query created with parallelism N > 1 reads its input in N slices: a
 * Kafka partition p belongs to slice p % N, a file of a file source to the
 * slice its path hashes to.  Each slice has batches of its own, which pool
 * workers run side by side; a batch of slice k reads, decodes and commits
 * only the offsets of slice k's partitions.  What each batch locks:
 *
 *	- first its slice's row in streaming.query_slices, FOR UPDATE, for the
 *	  whole batch: no two runners read the same partitions at once;
 *	- then the query's row in streaming.queries, FOR KEY SHARE, for the
 *	  whole batch: the slices' batches run side by side;
 *	- what must wait for every batch of the query (a run() of the whole
 *	  query, stop(), alter_query(), reset_query(), drop_query()) takes all
 *	  the slices' rows, in order, and then the query's row: it waits for
 *	  the slices' batches in progress, and those that begin meanwhile wait
 *	  for it before they hold anything it needs (SlicesLockAll);
 *	- the query's row FOR NO KEY UPDATE, once its input is decoded, until
 *	  it commits: the merges into the state and result tables, the
 *	  watermark, the batch id, progress and the sinks' writes happen one
 *	  slice at a time, in the order the batches commit.
 *
 * So the batch ids of a query stay unique and follow the commit order (a
 * batch takes the id after the last committed one once it holds the
 * query's row), the watermark is the one a single runner would have (each
 * batch, holding the row, reads the latest committed one, drops the rows
 * it makes late and moves it by its own input), and merges cannot
 * deadlock over the groups they touch: only one merges at a time.  What
 * runs side by side is the reading and decoding of the input — for Kafka,
 * librdkafka's fetching and the decoding of the messages.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "slices.h"
#include "source.h"
#include "streaming.h"

/*
 * CatalogHasSlices tells whether the catalog has streaming.query_slices
 * and the column parallelism (version 0.5).
 */
bool
CatalogHasSlices(void)
{
	Oid			nsp = get_namespace_oid(STREAMING_SCHEMA, true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("query_slices", nsp));
}

/* the slice that reads a Kafka partition */
int
SliceOfPartition(int32 partition, int nslices)
{
	return nslices <= 1 ? 0 : (int) ((uint32) partition % (uint32) nslices);
}

/* the slice that reads a file of a file source, by its path */
int
SliceOfFile(const char *path, int nslices)
{
	if (nslices <= 1)
		return 0;
	return (int) (hash_bytes((const unsigned char *) path, (int) strlen(path)) % (uint32) nslices);
}

/*
 * SlicesCheck refuses a parallelism that the query cannot have: out of
 * range, a source that cannot split its input, or a trigger that reads
 * the input in one go.
 */
void
SlicesCheck(const char *query, List *sources, const char *trigger, int parallelism)
{
	ListCell   *lc;

	if (parallelism < 1 || parallelism > SLICES_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("parallelism must be between 1 and %d", SLICES_MAX)));
	if (parallelism == 1)
		return;
	if (!CatalogHasSlices())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("parallelism needs version 0.5 of extension \"streaming\""),
				 errhint("Run ALTER EXTENSION streaming UPDATE.")));
	if (strcmp(trigger, "once") == 0 || strcmp(trigger, "available_now") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("continuous query \"%s\" cannot have parallelism %d with trigger '%s'",
						query, parallelism, trigger),
				 errdetail("Slices run side by side on pool workers while the query runs; trigger '%s' reads its input in one run.", trigger),
				 errhint("Use a trigger interval, or '0'.")));
	foreach(lc, sources)
	{
		char	   *name;
		char	   *kind;
		Jsonb	   *options;

		if (!SourceLookup(lfirst_oid(lc), &name, &kind, &options))
			continue;
		if (strcmp(kind, "kafka") != 0 && strcmp(kind, "file") != 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("continuous query \"%s\" cannot have parallelism %d: source \"%s\" is a %s source",
							query, parallelism, name, kind),
					 errdetail("Only Kafka sources (by partition) and file sources (by file) split their input into slices."),
					 errhint("Create the query with parallelism 1.")));
	}
}

/*
 * SlicesSet records a query's parallelism and makes its slices' rows (the
 * caller holds the query's row FOR UPDATE: no batch runs meanwhile).
 */
void
SlicesSet(int32 query_id, int parallelism)
{
	Oid			argtypes[2] = {INT4OID, INT4OID};
	Datum		args[2] = {Int32GetDatum(query_id), Int32GetDatum(parallelism)};

	if (!CatalogHasSlices())
		return;
	SPI_connect();

	/*
	 * A new parallelism moves partitions between slices: a slice's
	 * watermark and whether it read all it knew of were about its former
	 * partitions, and a backlog that moves to a slice that had read ahead
	 * must not be late for it.  Each slice holds the watermark back until
	 * it has read again.
	 */
	if (CatalogExecute("UPDATE streaming.query_slices SET watermark = NULL, drained = false "
					   "WHERE query OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.<>) "
					   "(SELECT q.parallelism FROM streaming.queries q WHERE q.id OPERATOR(pg_catalog.=) $1)",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.query_slices");
	if (CatalogExecute("UPDATE streaming.queries SET parallelism = $2 WHERE id OPERATOR(pg_catalog.=) $1",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.queries");
	if (CatalogExecute("DELETE FROM streaming.query_slices WHERE query OPERATOR(pg_catalog.=) $1 "
					   "AND (slice OPERATOR(pg_catalog.>=) $2 OR $2 OPERATOR(pg_catalog.=) 1)",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not update streaming.query_slices");
	if (parallelism > 1 &&
		CatalogExecute("INSERT INTO streaming.query_slices (query, slice) "
					   "SELECT $1, s FROM pg_catalog.generate_series(0, $2 OPERATOR(pg_catalog.-) 1) s "
					   "ON CONFLICT DO NOTHING",
					   2, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not update streaming.query_slices");
	SPI_finish();
}

/*
 * SliceLock takes the first lock of a batch of one slice of a query (see
 * above): the slice's row, made if the catalog lacks it (after a restore),
 * but not for a slice that a new parallelism took away meanwhile (the
 * batch then finds it has nothing to read).
 */
void
SliceLock(const char *query, int slice)
{
	Oid			argtypes[2] = {TEXTOID, INT4OID};
	Datum		args[2] = {CStringGetTextDatum(query), Int32GetDatum(slice)};
	const char *lock = "SELECT 1 FROM streaming.query_slices s "
		"WHERE s.query OPERATOR(pg_catalog.=) (SELECT q.id FROM streaming.queries q "
		"WHERE q.name OPERATOR(pg_catalog.=) $1) "
		"AND s.slice OPERATOR(pg_catalog.=) $2 FOR UPDATE OF s";

	SPI_connect();
	if (CatalogExecute(lock, 2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock streaming.query_slices");
	if (SPI_processed == 0)
	{
		if (CatalogExecute("INSERT INTO streaming.query_slices (query, slice) "
						   "SELECT q.id, $2 FROM streaming.queries q WHERE q.name OPERATOR(pg_catalog.=) $1 "
						   "AND $2 OPERATOR(pg_catalog.<) q.parallelism "
						   "ON CONFLICT DO NOTHING", 2, argtypes, args, NULL, false, 0) != SPI_OK_INSERT ||
			CatalogExecute(lock, 2, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not lock streaming.query_slices");
	}
	SPI_finish();
}

/*
 * SlicesLockAll takes the rows of all of a query's slices, in order, for
 * what must wait for every batch of the query (a batch of the whole
 * query, stop(), alter_query(), reset_query(), drop_query()), before it
 * locks the query's row: a slice's batch locks its slice's row before the
 * query's row, so the two cannot wait for each other.
 */
void
SlicesLockAll(int32 query_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(query_id)};

	if (!CatalogHasSlices())
		return;
	SPI_connect();
	if (CatalogExecute("SELECT 1 FROM streaming.query_slices WHERE query OPERATOR(pg_catalog.=) $1 "
					   "ORDER BY slice FOR UPDATE",
					   1, argtypes, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not lock streaming.query_slices");
	SPI_finish();
}

/*
 * SlicesRelease lets go of a query's slices for stop(): it waits for
 * their batches in progress (which hold their rows) and clears their
 * workers, so that none is left holding them while the query is stopped.
 */
void
SlicesRelease(int32 query_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(query_id)};

	if (!CatalogHasSlices())
		return;
	SlicesLockAll(query_id);
	SPI_connect();
	if (CatalogExecute("UPDATE streaming.query_slices SET worker_pid = NULL, restarts = 0, restart_at = NULL "
					   "WHERE query OPERATOR(pg_catalog.=) $1",
					   1, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update streaming.query_slices");
	SPI_finish();
}
