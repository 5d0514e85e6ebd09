/*
 * stackinfo.c — where a thread's stack is, for programs (and the pthread
 * layer's pthread_getattr_np) that look for their stack bounds.
 */
#include <errno.h>
#include "sched_internal.h"

int weft_getstack(weft_t h, void **addr, size_t *size)
{
	if (!addr || !size)
		return EINVAL;
	struct wf_thread *t = wf_tcb_lock_handle(h);
	if (!t)
		return ESRCH;
	int e = 0;
	if (t->state == WF_DONE)
		e = ESRCH;
	else if (!t->stack.lo)
		e = ENOENT;   /* main: the kernel thread's own stack */
	else {
		*addr = t->stack.lo;
		*size = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
	}
	wf_spin_unlock(&t->lk);
	return e;
}
