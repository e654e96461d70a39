/*-------------------------------------------------------------------------
 *
 * window.h
 *	  Event-time windows: streaming.window(ts, size [, slide [, origin]]).
 *
 *-------------------------------------------------------------------------
 */
#ifndef STREAMING_WINDOW_H
#define STREAMING_WINDOW_H

#include "postgres.h"

#include "nodes/primnodes.h"

/*
 * WindowCheckConstArgs raises, for a call of streaming.window() whose size,
 * slide or origin are constants, the error the call would raise on its
 * first row (a size in months, a slide that puts a row in too many
 * windows, ...), so that a query can be refused when it is created.
 */
extern void WindowCheckConstArgs(FuncExpr *fexpr);

/*
 * WindowConstantSize: whether a streaming.window() call's size is a
 * constant (*usecs, in microseconds), so that its windows are named by
 * their start.
 */
extern bool WindowConstantSize(FuncExpr *fexpr, int64 *usecs);

#endif							/* STREAMING_WINDOW_H */
