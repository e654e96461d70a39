/*-------------------------------------------------------------------------
 *
 * generic_agg.c
 *	  Incremental state for any aggregate that has a combine function.
 *
 * Aggregates with a native form (count, sum, avg, ...) keep readable typed
 * state columns.  Every other aggregate with pg_aggregate.aggcombinefn is
 * kept through three functions over a bytea state:
 *
 *	streaming.agg_partial(agg, args...)		an aggregate: the aggregate's own
 *											transition function over a batch,
 *											serialized
 *	streaming.agg_combine(agg, a, b)		the combine function of two states
 *	streaming.agg_finalize(agg, s, NULL::t)	the final function
 *
 * States of type internal go through the aggregate's serial/deserial
 * functions, others through their type's send/receive functions.  This is
 * what brings the aggregates of other extensions (hll, tdigest, ...) along.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(streaming_agg_partial_trans);
PG_FUNCTION_INFO_V1(streaming_agg_partial_final);
PG_FUNCTION_INFO_V1(streaming_agg_combine);
PG_FUNCTION_INFO_V1(streaming_agg_finalize);

/* what an aggregate is made of, looked up once per call site */
typedef struct AggParts
{
	Oid			aggfnoid;
	Oid			transtype;
	int16		translen;
	bool		transbyval;
	bool		init_null;
	Datum		init_value;		/* in fn_mcxt */
	FmgrInfo	transfn;
	FmgrInfo	combinefn;
	FmgrInfo	finalfn;		/* fn_oid InvalidOid if none */
	int			final_nargs;	/* 1, or more with FINALFUNC_EXTRA */
	FmgrInfo	serialfn;		/* internal states */
	FmgrInfo	deserialfn;
	FmgrInfo	sendfn;			/* other states */
	FmgrInfo	recvfn;
	Oid			typioparam;
	bool		call_checked;	/* the call site's types match the aggregate */
} AggParts;

/* the running state of streaming.agg_partial */
typedef struct PartialState
{
	AggParts   *parts;
	Datum		value;
	bool		isnull;
} PartialState;

/*
 * agg_parts looks up an aggregate's functions, caching them in fn_extra.
 */
static AggParts *
agg_parts(FunctionCallInfo fcinfo, Oid aggfnoid)
{
	AggParts   *p = fcinfo->flinfo->fn_extra;
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
	HeapTuple	tup;
	Form_pg_aggregate agg;
	Datum		init;
	bool		isnull;

	if (p != NULL && p->aggfnoid == aggfnoid)
		return p;

	tup = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggfnoid));
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("function %u is not an aggregate", aggfnoid)));
	agg = (Form_pg_aggregate) GETSTRUCT(tup);
	if (!OidIsValid(agg->aggcombinefn))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate function %s has no combine function",
						format_procedure(aggfnoid))));
	if (agg->aggtranstype == INTERNALOID &&
		(!OidIsValid(agg->aggserialfn) || !OidIsValid(agg->aggdeserialfn)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate function %s has no serialization functions",
						format_procedure(aggfnoid))));

	/* these functions run the aggregate's own: its EXECUTE privilege applies */
#if PG_VERSION_NUM >= 160000
	if (object_aclcheck(ProcedureRelationId, aggfnoid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
#else
	if (pg_proc_aclcheck(aggfnoid, GetUserId(), ACL_EXECUTE) != ACLCHECK_OK)
#endif
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_AGGREGATE, get_func_name(aggfnoid));

	p = MemoryContextAllocZero(cxt, sizeof(AggParts));
	p->aggfnoid = aggfnoid;
	p->transtype = agg->aggtranstype;
	get_typlenbyval(p->transtype, &p->translen, &p->transbyval);
	fmgr_info_cxt(agg->aggtransfn, &p->transfn, cxt);
	fmgr_info_cxt(agg->aggcombinefn, &p->combinefn, cxt);
	if (OidIsValid(agg->aggfinalfn))
	{
		fmgr_info_cxt(agg->aggfinalfn, &p->finalfn, cxt);
		p->final_nargs = agg->aggfinalextra ? get_func_nargs(agg->aggfinalfn) : 1;
	}
	if (p->transtype == INTERNALOID)
	{
		fmgr_info_cxt(agg->aggserialfn, &p->serialfn, cxt);
		fmgr_info_cxt(agg->aggdeserialfn, &p->deserialfn, cxt);
	}
	else
	{
		Oid			sendfn;
		Oid			recvfn;
		bool		varlena;

		getTypeBinaryOutputInfo(p->transtype, &sendfn, &varlena);
		getTypeBinaryInputInfo(p->transtype, &recvfn, &p->typioparam);
		fmgr_info_cxt(sendfn, &p->sendfn, cxt);
		fmgr_info_cxt(recvfn, &p->recvfn, cxt);
	}

	init = SysCacheGetAttr(AGGFNOID, tup, Anum_pg_aggregate_agginitval, &isnull);
	p->init_null = isnull;
	if (!isnull)
	{
		Oid			infn;
		Oid			ioparam;
		MemoryContext old = MemoryContextSwitchTo(cxt);

		getTypeInputInfo(p->transtype, &infn, &ioparam);
		p->init_value = OidInputFunctionCall(infn, TextDatumGetCString(init), ioparam, -1);
		MemoryContextSwitchTo(old);
	}
	ReleaseSysCache(tup);

	fcinfo->flinfo->fn_extra = p;
	return p;
}

/*
 * check_input_types refuses a call of streaming.agg_partial() whose
 * arguments are not of the types the aggregate takes: its transition
 * function would read them as what they are not (a text as a bigint, a
 * number as a pointer).
 */
static void
check_input_types(FunctionCallInfo fcinfo, AggParts *p, int ninputs)
{
	Oid		   *declared;
	int			nargs;

	(void) get_func_signature(p->aggfnoid, &declared, &nargs);
	if (nargs != ninputs)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("aggregate %s takes %d arguments, not %d",
						format_procedure(p->aggfnoid), nargs, ninputs)));
	for (int i = 0; i < nargs; i++)
	{
		Oid			actual = get_fn_expr_argtype(fcinfo->flinfo, 2 + i);

		if (actual == declared[i] || declared[i] == ANYOID || IsPolymorphicType(declared[i]) ||
			(OidIsValid(actual) && IsBinaryCoercible(actual, declared[i])))
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("argument %d of aggregate %s must be of type %s, not %s", i + 1,
						format_procedure(p->aggfnoid), format_type_be(declared[i]),
						OidIsValid(actual) ? format_type_be(actual) : "unknown")));
	}
	p->call_checked = true;
}

/*
 * check_result_type refuses a call of streaming.agg_finalize() whose third
 * argument is not of the aggregate's result type: the result would be
 * read as that type.
 */
static void
check_result_type(FunctionCallInfo fcinfo, AggParts *p)
{
	Oid			rettype = get_func_rettype(p->aggfnoid);
	Oid			asked = get_fn_expr_argtype(fcinfo->flinfo, 2);

	if (IsPolymorphicType(rettype) || asked != rettype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("aggregate %s returns %s, not %s", format_procedure(p->aggfnoid),
						format_type_be(rettype), OidIsValid(asked) ? format_type_be(asked) : "unknown")));
	p->call_checked = true;
}

/*
 * fake_agg_context makes combine and final functions, which insist on
 * being called by an aggregate, run outside one: AggCheckCallContext only
 * needs an AggState whose current aggregate context holds the memory.
 */
static Node *
fake_agg_context(MemoryContext cxt)
{
	AggState   *as = makeNode(AggState);
	ExprContext *ec = makeNode(ExprContext);

	ec->ecxt_per_tuple_memory = cxt;
	as->curaggcontext = ec;
	as->tmpcontext = ec;
	return (Node *) as;
}

static bytea *
serialize_state(AggParts *p, Datum value, Node *context)
{
	if (p->transtype == INTERNALOID)
	{
		LOCAL_FCINFO(call, 1);

		InitFunctionCallInfoData(*call, &p->serialfn, 1, InvalidOid, context, NULL);
		call->args[0].value = value;
		call->args[0].isnull = false;
		return DatumGetByteaPCopy(FunctionCallInvoke(call));
	}
	return SendFunctionCall(&p->sendfn, value);
}

static Datum
deserialize_state(AggParts *p, bytea *bytes, Node *context)
{
	if (p->transtype == INTERNALOID)
	{
		LOCAL_FCINFO(call, 2);

		InitFunctionCallInfoData(*call, &p->deserialfn, 2, InvalidOid, context, NULL);
		call->args[0].value = PointerGetDatum(bytes);
		call->args[0].isnull = false;
		call->args[1].value = (Datum) 0;
		call->args[1].isnull = true;
		return FunctionCallInvoke(call);
	}
	else
	{
		StringInfoData buf;

		buf.data = VARDATA_ANY(bytes);
		buf.len = VARSIZE_ANY_EXHDR(bytes);
		buf.maxlen = buf.len;
		buf.cursor = 0;
		return ReceiveFunctionCall(&p->recvfn, &buf, p->typioparam, -1);
	}
}

/*
 * streaming_agg_partial_trans is the transition function of
 * streaming.agg_partial(agg regprocedure, VARIADIC "any"): it runs the
 * aggregate's own transition function, as nodeAgg would.
 */
Datum
streaming_agg_partial_trans(PG_FUNCTION_ARGS)
{
	MemoryContext aggcontext;
	PartialState *state;
	int			ninputs = PG_NARGS() - 2;
	AggParts   *p;
	LOCAL_FCINFO(call, FUNC_MAX_ARGS);
	Datum		result;
	MemoryContext old;

	if (!AggCheckCallContext(fcinfo, &aggcontext))
		elog(ERROR, "streaming_agg_partial_trans called in non-aggregate context");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("aggregate must not be null")));

	p = agg_parts(fcinfo, PG_GETARG_OID(1));
	if (!p->call_checked)
		check_input_types(fcinfo, p, ninputs);
	if (PG_ARGISNULL(0))
	{
		state = MemoryContextAllocZero(aggcontext, sizeof(PartialState));
		state->parts = p;
		state->isnull = p->init_null;
		if (!p->init_null)
		{
			old = MemoryContextSwitchTo(aggcontext);
			state->value = datumCopy(p->init_value, p->transbyval, p->translen);
			MemoryContextSwitchTo(old);
		}
	}
	else
		state = (PartialState *) PG_GETARG_POINTER(0);

	/* a strict transition function skips NULL inputs ... */
	if (p->transfn.fn_strict)
	{
		for (int i = 0; i < ninputs; i++)
			if (PG_ARGISNULL(2 + i))
				PG_RETURN_POINTER(state);
		/* ... and with no initial value starts from the first input */
		if (state->isnull)
		{
			old = MemoryContextSwitchTo(aggcontext);
			state->value = datumCopy(PG_GETARG_DATUM(2), p->transbyval, p->translen);
			state->isnull = false;
			MemoryContextSwitchTo(old);
			PG_RETURN_POINTER(state);
		}
	}

	/* the inner function sees our argument types through fn_expr */
	if (p->transfn.fn_expr == NULL)
	{
		List	   *args = list_make1(makeNullConst(p->transtype, -1, InvalidOid));

		old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		for (int i = 0; i < ninputs; i++)
			args = lappend(args, makeNullConst(get_fn_expr_argtype(fcinfo->flinfo, 2 + i),
											   -1, InvalidOid));
		p->transfn.fn_expr = (Node *) makeFuncExpr(p->transfn.fn_oid, p->transtype, args,
												   InvalidOid, PG_GET_COLLATION(),
												   COERCE_EXPLICIT_CALL);
		MemoryContextSwitchTo(old);
	}

	InitFunctionCallInfoData(*call, &p->transfn, ninputs + 1, PG_GET_COLLATION(),
							 fcinfo->context, NULL);
	call->args[0].value = state->value;
	call->args[0].isnull = state->isnull;
	for (int i = 0; i < ninputs; i++)
	{
		call->args[i + 1].value = PG_GETARG_DATUM(2 + i);
		call->args[i + 1].isnull = PG_ARGISNULL(2 + i);
	}
	result = FunctionCallInvoke(call);

	/* a by-reference state returned in another context is copied, as nodeAgg does */
	if (!p->transbyval && !call->isnull && p->transtype != INTERNALOID &&
		DatumGetPointer(result) != DatumGetPointer(state->value))
	{
		old = MemoryContextSwitchTo(aggcontext);
		result = datumCopy(result, p->transbyval, p->translen);
		MemoryContextSwitchTo(old);
	}
	state->value = result;
	state->isnull = call->isnull;
	PG_RETURN_POINTER(state);
}

/*
 * streaming_agg_partial_final serializes the partial state of a batch.
 */
Datum
streaming_agg_partial_final(PG_FUNCTION_ARGS)
{
	PartialState *state;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	state = (PartialState *) PG_GETARG_POINTER(0);
	if (state->isnull)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(serialize_state(state->parts, state->value, fcinfo->context));
}

/*
 * streaming_agg_combine implements streaming.agg_combine(agg, a, b): the
 * aggregate's combine function over two serialized states.
 */
Datum
streaming_agg_combine(PG_FUNCTION_ARGS)
{
	AggParts   *p;
	Node	   *context;
	LOCAL_FCINFO(call, 2);
	Datum		result;

	if (PG_ARGISNULL(1) && PG_ARGISNULL(2))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_GETARG_DATUM(2));
	if (PG_ARGISNULL(2))
		PG_RETURN_DATUM(PG_GETARG_DATUM(1));

	p = agg_parts(fcinfo, PG_GETARG_OID(0));
	context = fake_agg_context(CurrentMemoryContext);
	InitFunctionCallInfoData(*call, &p->combinefn, 2, PG_GET_COLLATION(), context, NULL);
	call->args[0].value = deserialize_state(p, PG_GETARG_BYTEA_PP(1), context);
	call->args[0].isnull = false;
	call->args[1].value = deserialize_state(p, PG_GETARG_BYTEA_PP(2), context);
	call->args[1].isnull = false;
	result = FunctionCallInvoke(call);
	if (call->isnull)
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(serialize_state(p, result, context));
}

/*
 * streaming_agg_finalize implements streaming.agg_finalize(agg, s,
 * NULL::result_type): the aggregate's final function over a state.
 */
Datum
streaming_agg_finalize(PG_FUNCTION_ARGS)
{
	AggParts   *p = agg_parts(fcinfo, PG_GETARG_OID(0));
	Node	   *context = fake_agg_context(CurrentMemoryContext);
	Datum		state = (Datum) 0;
	bool		state_null = PG_ARGISNULL(1);
	LOCAL_FCINFO(call, FUNC_MAX_ARGS);
	Datum		result;

	if (!p->call_checked)
		check_result_type(fcinfo, p);

	if (!state_null)
		state = deserialize_state(p, PG_GETARG_BYTEA_PP(1), context);

	if (!OidIsValid(p->finalfn.fn_oid))
	{
		if (state_null)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(state);
	}
	if (p->finalfn.fn_strict && state_null)
		PG_RETURN_NULL();

	InitFunctionCallInfoData(*call, &p->finalfn, p->final_nargs, PG_GET_COLLATION(), context, NULL);
	call->args[0].value = state;
	call->args[0].isnull = state_null;
	for (int i = 1; i < p->final_nargs; i++)
	{
		call->args[i].value = (Datum) 0;
		call->args[i].isnull = true;
	}
	result = FunctionCallInvoke(call);
	if (call->isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
