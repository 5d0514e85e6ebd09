/*
 * identity.c — who a green thread is: its handle (weft_self, weft_equal)
 * and its name (weft_setname, weft_getname).
 *
 * A name lives in the TCB and is read and written under t->lk, checked
 * against the handle's generation there (wf_tcb_lock_handle), so a name
 * call on a thread that finished and was reused fails with ESRCH instead of
 * renaming the new thread.  weft_dump and the trace read names racily or
 * under the same lock.
 */
#include <errno.h>
#include <string.h>
#include "sched_internal.h"

weft_t weft_self(void)
{
	struct wf_thread *t = wf_self_init();
	return t ? wf_tcb_handle(t) : WEFT_NULL;
}

int weft_equal(weft_t a, weft_t b) { return a == b; }

int weft_setname(weft_t h, const char *name)
{
	if (!name)
		return EINVAL;
	struct wf_thread *t = wf_tcb_lock_handle(h);
	if (!t)
		return ESRCH;
	strncpy(t->name, name, sizeof t->name - 1);
	t->name[sizeof t->name - 1] = '\0';
	wf_spin_unlock(&t->lk);
	return 0;
}

int weft_getname(weft_t h, char *buf, size_t len)
{
	if (!buf)
		return EINVAL;
	struct wf_thread *t = wf_tcb_lock_handle(h);
	if (!t)
		return ESRCH;
	int e = 0;
	size_t n = strlen(t->name);
	if (n + 1 > len)
		e = ERANGE;
	else
		memcpy(buf, t->name, n + 1);
	wf_spin_unlock(&t->lk);
	return e;
}
