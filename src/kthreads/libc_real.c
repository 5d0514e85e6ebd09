/*
 * libc_real.c — find libc's definition of a pthread function past the
 * pthread layer (libc_real.h says why).
 *
 * The layer exports weft_pthread_layer_next(name), which answers
 * dlsym(RTLD_NEXT, name) as seen from the layer: the next definition in
 * the loader's search order after the layer — glibc's, or a sanitizer's
 * interceptor loaded ahead of glibc, exactly what the process would use
 * without the layer.  When the layer is absent the ordinary binding is
 * right and is returned as is.
 *
 * Rejected: walking the link map and asking each object for its own
 * definition — dlsym needs a handle from dlopen, and dlopen(RTLD_NOLOAD) of
 * an object not initialized yet runs its initializers out of the loader's
 * order (weft may start from inside a constructor: a sanitizer runtime's
 * start then recursed into itself).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include "kthread.h"
#include "libc_real.h"

void *wf_libc_sym(const char *name, void *dflt)
{
	void *(*next)(const char *) =
		(void *(*)(const char *))dlsym(RTLD_DEFAULT, "weft_pthread_layer_next");
	if (!next)
		return dflt;
	void *p = next(name);
	return p ? p : dflt;
}

int wf_kt_own_stack(void **lo, size_t *size)
{
	pthread_attr_t a;
	int e = WF_LIBC(pthread_getattr_np)(WF_LIBC(pthread_self)(), &a);
	if (e)
		return e;
	e = WF_LIBC(pthread_attr_getstack)(&a, lo, size);
	WF_LIBC(pthread_attr_destroy)(&a);
	return e;
}
