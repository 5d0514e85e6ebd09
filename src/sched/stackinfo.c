/*
 * stackinfo.c — where a thread's stack is, for programs (and the pthread
 * layer's pthread_getattr_np) that look for their stack bounds.
 */
#include "sched_internal.h"

int weft_getstack(weft_t h, void **addr, size_t *size)
{
	if (!addr || !size)
		return EINVAL;
	if (wf_runtime_ensure())
		return ESRCH;
	struct wf_thread *t = wf_tcb_lookup(h);
	if (!t)
		return ESRCH;
	wf_spin_lock(&t->lk);
	int e = wf_tcb_handle(t) == h && t->state != WF_FREE && t->state != WF_DONE ? 0 : ESRCH;
	if (!e && !t->stack.lo)
		e = ENOENT;   /* main: the kernel thread's own stack */
	if (!e) {
		*addr = t->stack.lo;
		*size = (size_t)((char *)t->stack.hi - (char *)t->stack.lo);
	}
	wf_spin_unlock(&t->lk);
	return e;
}
