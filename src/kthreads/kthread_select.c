/*
 * kthread_select.c — which backend makes the workers, decided once
 * (docs/design.md, "Kernel workers"): clone when its gate passes, pthread
 * otherwise, unless WEFT_KTHREADS (read by the caller, passed as the mode)
 * says which.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kt_internal.h"
#include "libc_real.h"

static pthread_mutex_t wf_kt_select_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int wf_kt_chosen = WF_KT_NONE;

/* One line, one write(2): never interleaved with another thread's output. */
static void wf_kt_say(const char *fmt, const char *check)
{
	char line[256];
	int n = snprintf(line, sizeof line, fmt, check);

	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1;
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static int wf_kt_decide(enum wf_kt_mode mode, enum wf_kt_backend *out)
{
	const char *check = "clone gate";

	if (mode == WF_KT_MODE_PTHREAD) {
		*out = WF_KT_PTHREAD;
		return 0;
	}
	if (wf_kt_clone_gate(&check) == 0) {
		*out = WF_KT_CLONE;
		return 0;
	}
	if (mode == WF_KT_MODE_CLONE) {
		wf_kt_say("weft: WEFT_KTHREADS=clone: %s failed\n", check);
		return EAGAIN;
	}
	wf_kt_say("weft: clone workers unavailable (%s): using pthread workers\n",
	          check);
	*out = WF_KT_PTHREAD;
	return 0;
}

/*
 * The first successful call decides.  A later call asking for the backend
 * already chosen (or auto) returns it; one asking for the other backend
 * gets EBUSY: workers of both kinds never coexist.
 */
int wf_kt_select(enum wf_kt_mode mode, enum wf_kt_backend *chosen)
{
	enum wf_kt_backend b = WF_KT_NONE;
	int saved = errno;
	int e = 0;

	if (mode != WF_KT_MODE_AUTO && mode != WF_KT_MODE_CLONE &&
	    mode != WF_KT_MODE_PTHREAD)
		return EINVAL;
	WF_LIBC(pthread_mutex_lock)(&wf_kt_select_lock);
	b = (enum wf_kt_backend)wf_kt_chosen;
	if (b == WF_KT_NONE) {
		e = wf_kt_decide(mode, &b);
		if (!e)
			wf_kt_chosen = b;
	} else if ((mode == WF_KT_MODE_CLONE && b != WF_KT_CLONE) ||
	           (mode == WF_KT_MODE_PTHREAD && b != WF_KT_PTHREAD)) {
		e = EBUSY;
	}
	WF_LIBC(pthread_mutex_unlock)(&wf_kt_select_lock);
	if (!e && chosen)
		*chosen = b;
	errno = saved;
	return e;
}

enum wf_kt_backend wf_kt_backend(void)
{
	return (enum wf_kt_backend)wf_kt_chosen;
}

const char *wf_kt_backend_name(enum wf_kt_backend b)
{
	switch (b) {
	case WF_KT_CLONE:
		return "clone";
	case WF_KT_PTHREAD:
		return "pthread";
	case WF_KT_NONE:
		return "none";
	}
	return "unknown";
}

/* Before any selection, spawning selects auto (the library's default). */
int wf_kt_spawn(void (*fn)(void *), void *arg, size_t stack_size, pid_t *tid)
{
	enum wf_kt_backend b = wf_kt_backend();

	if (!fn)
		return EINVAL;
	if (b == WF_KT_NONE && wf_kt_select(WF_KT_MODE_AUTO, &b) != 0)
		return EAGAIN;
	if (b == WF_KT_CLONE)
		return wf_kt_clone_spawn(fn, arg, stack_size, tid);
	return wf_kt_pthread_spawn(fn, arg, stack_size, tid);
}
