/*
 * base/err.h - the error trail.
 *
 * A failing call records what went wrong in a thread-local buffer and
 * returns -1 (or NULL); each caller on the way up may prepend its own
 * context, so the line a user finally reads is a trail from the outside in:
 *
 *     job wordcount.so: file source: open 'in.txt': No such file or directory
 *
 * Which thread may call: any; each thread has its own trail.
 */
#ifndef WEIR_BASE_ERR_H
#define WEIR_BASE_ERR_H

#include <stddef.h>

#define WEIR_ERR_MAX 1024

/* Replace the trail with a formatted message. Returns -1. */
int weir_err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Same, appending ": strerror(errnum)". Returns -1. */
int weir_err_errno(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend "context: " to the trail. Returns -1. */
int weir_err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The current trail ("" when none was set). Valid until the next set. */
const char *weir_err_msg(void);
void weir_err_clear(void);

#endif
