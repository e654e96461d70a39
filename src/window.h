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

#include "datatype/timestamp.h"
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

/* the grid of a sliding streaming.window(ts, size, slide, origin) */
typedef struct WindowGrid
{
	int64		size;			/* microseconds */
	int64		slide;			/* microseconds */
	TimestampTz origin;
} WindowGrid;

/*
 * WindowSlidingCall: whether expr calls the sliding streaming.window() with
 * a size, slide and origin that are constants it accepts (*grid).
 */
extern bool WindowSlidingCall(Expr *expr, WindowGrid *grid);

/*
 * WindowSlidingStarts: the windows of the grid that contain ts, as the call
 * returns them: their number, the oldest's start in *oldest, the others a
 * slide apart.  Raises the errors the call raises.
 */
extern int64 WindowSlidingStarts(const WindowGrid *grid, TimestampTz ts, TimestampTz *oldest);

#endif							/* STREAMING_WINDOW_H */
