/*
 * pt_key.c — thread-specific data (pthread_key_*) on weft keys, and
 * pthread_once.
 *
 * A pthread_key_t is the weft key itself: weft keeps the values per green
 * thread (they travel with it across workers) and runs their destructors
 * when it finishes, and WEFT_KEYS_MAX is glibc's PTHREAD_KEYS_MAX.
 *
 * Foreign threads (kernel threads that are not weft workers) have no green
 * thread to keep values in, so the layer keeps theirs: a small table per
 * kernel thread, made on its first pthread_setspecific, whose destructors
 * run when the kernel thread exits (glibc's thread-exit destructor list,
 * the one C++ thread_local uses).  The destructor of a key is recorded at
 * pthread_key_create for that purpose.
 */
#include <limits.h>
#include <stdlib.h>
#include "pt_internal.h"

_Static_assert(sizeof(pthread_key_t) == sizeof(weft_key_t), "pthread_key_t");
_Static_assert(WEFT_KEYS_MAX >= PTHREAD_KEYS_MAX, "weft must offer glibc's key count");

extern int __cxa_thread_atexit_impl(void (*fn)(void *), void *obj, void *dso);
extern char __dso_handle[] __attribute__((visibility("hidden")));

/* Destructors by key, for foreign threads: (key, destructor) pairs. */
static struct { weft_key_t k; void (*dtor)(void *); } pt_dtors[PTHREAD_KEYS_MAX];
static weft_mutex_t pt_dtors_lock = WEFT_MUTEX_INITIALIZER;

struct pt_ftsd { int n; struct { weft_key_t k; void *v; } e[PTHREAD_KEYS_MAX]; };
static __thread struct pt_ftsd *pt_ftsd;

/* Keys made by glibc (before the layer's constructor) are below
 * PTHREAD_KEYS_MAX; weft's never are (their sequence bits are odd). */
static bool pt_glibc_key(pthread_key_t k) { return pt_unlikely(k < PTHREAD_KEYS_MAX); }

PT_API int pthread_key_create(pthread_key_t *k, void (*dtor)(void *))
{
	if (pt_early())
		return pt_real(pthread_key_create)(k, dtor);
	weft_key_t wk;
	int e = weft_key_create(&wk, dtor);
	if (e)
		return e;
	weft_mutex_lock(&pt_dtors_lock);
	for (int i = 0; i < PTHREAD_KEYS_MAX; i++)
		if (!pt_dtors[i].k) {
			pt_dtors[i].k = wk;
			pt_dtors[i].dtor = dtor;
			break;
		}
	weft_mutex_unlock(&pt_dtors_lock);
	*k = wk;
	return 0;
}

PT_API int pthread_key_delete(pthread_key_t k)
{
	if (pt_glibc_key(k))
		return pt_real(pthread_key_delete)(k);
	int e = weft_key_delete(k);
	if (e)
		return e;
	weft_mutex_lock(&pt_dtors_lock);
	for (int i = 0; i < PTHREAD_KEYS_MAX; i++)
		if (pt_dtors[i].k == k) {
			pt_dtors[i].k = 0;
			break;
		}
	weft_mutex_unlock(&pt_dtors_lock);
	return 0;
}

static void (*pt_dtor_of(weft_key_t k, bool *live))(void *)
{
	void (*d)(void *) = NULL;
	*live = false;
	weft_mutex_lock(&pt_dtors_lock);
	for (int i = 0; i < PTHREAD_KEYS_MAX; i++)
		if (pt_dtors[i].k == k) {
			d = pt_dtors[i].dtor;
			*live = true;
			break;
		}
	weft_mutex_unlock(&pt_dtors_lock);
	return d;
}

/* A foreign kernel thread exits: POSIX destructor rounds over its values. */
static void pt_ftsd_exit(void *p)
{
	struct pt_ftsd *t = p;
	for (int round = 0; round < PTHREAD_DESTRUCTOR_ITERATIONS; round++) {
		bool again = false;
		for (int i = 0; i < t->n; i++) {
			void *v = t->e[i].v;
			bool live;
			void (*d)(void *) = pt_dtor_of(t->e[i].k, &live);
			if (!v || !live)
				continue;
			t->e[i].v = NULL;
			if (d) {
				d(v);
				again = true;
			}
		}
		if (!again)
			break;
	}
	pt_ftsd = NULL;
	free(t);
}

static void **pt_ftsd_slot(weft_key_t k, bool make)
{
	struct pt_ftsd *t = pt_ftsd;
	if (!t) {
		if (!make || !(t = calloc(1, sizeof *t)))
			return NULL;
		if (__cxa_thread_atexit_impl(pt_ftsd_exit, t, __dso_handle)) {
			free(t);
			return NULL;
		}
		pt_ftsd = t;
	}
	for (int i = 0; i < t->n; i++)
		if (t->e[i].k == k)
			return &t->e[i].v;
	if (!make || t->n == PTHREAD_KEYS_MAX)
		return NULL;
	t->e[t->n].k = k;
	return &t->e[t->n++].v;
}

PT_API void *pthread_getspecific(pthread_key_t k)
{
	if (pt_glibc_key(k))
		return pt_real(pthread_getspecific)(k);
	void *v = weft_getspecific(k);
	if (pt_likely(v) || pt_green())
		return v;
	bool live;
	(void)pt_dtor_of(k, &live);
	void **slot = live ? pt_ftsd_slot(k, false) : NULL;
	return slot ? *slot : NULL;
}

PT_API int pthread_setspecific(pthread_key_t k, const void *v)
{
	if (pt_glibc_key(k))
		return pt_real(pthread_setspecific)(k, v);
	pt_init();
	int e = weft_setspecific(k, v);
	if (e != EPERM)
		return e;
	/* A foreign thread. */
	bool live;
	(void)pt_dtor_of(k, &live);
	if (!live)
		return EINVAL;
	void **slot = pt_ftsd_slot(k, true);
	if (!slot)
		return ENOMEM;
	*slot = (void *)v;
	return 0;
}

/*
 * pthread_once: the int is the state (0 not run, 1 running, 2 done); the
 * rare callers that find it running wait on one process-wide weft
 * condition variable.  fn may throw (std::call_once is built on this): the
 * layer is compiled with -fexceptions, and the cleanup below puts the state
 * back to "not run" and wakes the waiters as the exception passes, so that
 * one of them runs fn again, as glibc does.
 */
static weft_mutex_t pt_once_lock = WEFT_MUTEX_INITIALIZER;
static weft_cond_t pt_once_cond = WEFT_COND_INITIALIZER;

struct pt_once_run { pthread_once_t *o; bool finished; };

static void pt_once_unwind(struct pt_once_run *r)
{
	if (r->finished)
		return;
	weft_mutex_lock(&pt_once_lock);
	__atomic_store_n(r->o, 0, __ATOMIC_RELEASE);
	weft_cond_broadcast(&pt_once_cond);
	weft_mutex_unlock(&pt_once_lock);
}

PT_API int pthread_once(pthread_once_t *o, void (*fn)(void))
{
	if (pt_likely(__atomic_load_n(o, __ATOMIC_ACQUIRE) == 2))
		return 0;
	if (pt_early())   /* glibc's states agree with ours: 0 new, 2 done */
		return pt_real(pthread_once)(o, fn);
	pt_init();
	weft_mutex_lock(&pt_once_lock);
	while (__atomic_load_n(o, __ATOMIC_ACQUIRE) == 1)
		weft_cond_wait(&pt_once_cond, &pt_once_lock);
	if (__atomic_load_n(o, __ATOMIC_ACQUIRE) == 2) {
		weft_mutex_unlock(&pt_once_lock);
		return 0;
	}
	__atomic_store_n(o, 1, __ATOMIC_RELAXED);
	weft_mutex_unlock(&pt_once_lock);
	{
		struct pt_once_run run __attribute__((cleanup(pt_once_unwind))) = { o, false };
		fn();
		run.finished = true;
	}
	weft_mutex_lock(&pt_once_lock);
	__atomic_store_n(o, 2, __ATOMIC_RELEASE);
	weft_cond_broadcast(&pt_once_cond);
	weft_mutex_unlock(&pt_once_lock);
	return 0;
}
