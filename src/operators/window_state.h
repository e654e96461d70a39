/*-------------------------------------------------------------------------
 *
 * window_state.h
 *	  State of an aggregation grouped by a window of the event time, keyed
 *	  by the window's start.
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_WINDOW_STATE_H
#define STREAMING_WINDOW_STATE_H

#include "postgres.h"

#include "nodes/primnodes.h"

#include "planner.h"

extern char *WindowStateSizeLiteral(int64 usecs);
extern Expr *WindowStateKeyExpr(Expr *window_call);
extern char *WindowStateRangeSql(const char *start, const char *size);
extern Node *WindowStateRangeNode(Node *start, int64 usecs);
extern char *WindowStateClosed(ContinuousPlan *plan, const char *alias);
extern char *WindowStateCloseIndex(ContinuousPlan *plan);

#endif							/* STREAMING_WINDOW_STATE_H */
