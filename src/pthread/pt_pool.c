/*
 * pt_pool.c — memory for the weft objects that do not fit in place in glibc's
 * type (docs/design.md, "The pthread layer": a pthread_mutex_t is 40 bytes, a
 * weft mutex 56).
 *
 * Fixed-size, 64-byte-aligned cells (one cache line each: two mutexes never
 * share one) carved from 64 KiB mmap chunks and recycled through a free
 * list.  Not malloc: a program may bring its own malloc, and a malloc that
 * locks a pthread mutex would then recurse into the layer.  The lock is a
 * plain test-and-set held for a few instructions; a waiter yields its CPU
 * (sched_yield through syscall, not the layer's green yield).
 */
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "pt_internal.h"

#define PT_CHUNK (64 * 1024)

struct pt_cell { struct pt_cell *next; };

static int pt_pool_lock;
static struct pt_cell *pt_free;
static char *pt_bump, *pt_end;

static void pt_pool_acquire(void)
{
	unsigned spins = 0;
	while (__atomic_exchange_n(&pt_pool_lock, 1, __ATOMIC_ACQUIRE))
		if (++spins % 64 == 0)
			syscall(SYS_sched_yield);
}

static void pt_pool_release(void) { __atomic_store_n(&pt_pool_lock, 0, __ATOMIC_RELEASE); }

void *pt_pool_alloc(void)
{
	pt_pool_acquire();
	struct pt_cell *c = pt_free;
	if (c) {
		pt_free = c->next;
	} else {
		if (pt_bump == pt_end) {
			void *m = mmap(NULL, PT_CHUNK, PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) {
				pt_pool_release();
				return NULL;
			}
			pt_bump = m;
			pt_end = pt_bump + PT_CHUNK;
		}
		c = (struct pt_cell *)(void *)pt_bump;
		pt_bump += PT_POOL_OBJ;
	}
	pt_pool_release();
	return c;
}

void pt_pool_free(void *p)
{
	struct pt_cell *c = p;
	pt_pool_acquire();
	c->next = pt_free;
	pt_free = c;
	pt_pool_release();
}

/* fork(): the lock is held for a few instructions at a time, by any kernel
 * thread; the child's copy must be free. */
void pt_pool_fork_lock(void) { pt_pool_acquire(); }
void pt_pool_fork_unlock(void) { pt_pool_release(); }
