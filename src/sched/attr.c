/*
 * attr.c — thread attributes.  An attribute object is valid between
 * weft_attr_init and weft_attr_destroy (checked with a magic number).
 */
#include <errno.h>
#include <string.h>
#include "sched_internal.h"

static bool wf_attr_ok(const weft_attr_t *a) { return a && a->_magic == WF_ATTR_MAGIC; }

int weft_attr_init(weft_attr_t *a)
{
	if (!a)
		return EINVAL;
	memset(a, 0, sizeof *a);
	a->_magic = WF_ATTR_MAGIC;
	return 0;
}

int weft_attr_destroy(weft_attr_t *a)
{
	if (!wf_attr_ok(a))
		return EINVAL;
	a->_magic = 0;
	return 0;
}

int weft_attr_setstacksize(weft_attr_t *a, size_t size)
{
	if (!wf_attr_ok(a) || size < WEFT_STACK_MIN || size > WF_STACK_SIZE_MAX)
		return EINVAL;
	a->_stacksize = size;
	a->_stackaddr = NULL;
	return 0;
}

int weft_attr_getstacksize(const weft_attr_t *a, size_t *size)
{
	if (!wf_attr_ok(a) || !size)
		return EINVAL;
	*size = a->_stacksize ? a->_stacksize
	                      : (wf_runtime_ensure() ? WF_STACK_SIZE_DEFAULT : wf_rt.cfg.stack_size);
	return 0;
}

int weft_attr_setstack(weft_attr_t *a, void *addr, size_t size)
{
	if (!wf_attr_ok(a) || !addr || size < WEFT_STACK_MIN ||
	    (uintptr_t)addr + size < (uintptr_t)addr)
		return EINVAL;
	a->_stackaddr = addr;
	a->_stacksize = size;
	return 0;
}

int weft_attr_getstack(const weft_attr_t *a, void **addr, size_t *size)
{
	if (!wf_attr_ok(a) || !addr || !size)
		return EINVAL;
	*addr = a->_stackaddr;
	*size = a->_stacksize;
	return 0;
}

int weft_attr_setdetachstate(weft_attr_t *a, int state)
{
	if (!wf_attr_ok(a) ||
	    (state != WEFT_CREATE_JOINABLE && state != WEFT_CREATE_DETACHED))
		return EINVAL;
	a->_detachstate = state;
	return 0;
}

int weft_attr_getdetachstate(const weft_attr_t *a, int *state)
{
	if (!wf_attr_ok(a) || !state)
		return EINVAL;
	*state = a->_detachstate;
	return 0;
}

int weft_attr_setname(weft_attr_t *a, const char *name)
{
	if (!wf_attr_ok(a) || !name)
		return EINVAL;
	strncpy(a->_name, name, sizeof a->_name - 1);
	a->_name[sizeof a->_name - 1] = '\0';
	return 0;
}

int weft_attr_getname(const weft_attr_t *a, char *buf, size_t len)
{
	if (!wf_attr_ok(a) || !buf)
		return EINVAL;
	size_t n = strlen(a->_name);
	if (n + 1 > len)
		return ERANGE;
	memcpy(buf, a->_name, n + 1);
	return 0;
}
