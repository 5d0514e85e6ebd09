/*
 * keys.c — thread-specific data.  Values belong to the green thread (they
 * travel with it across workers), are allocated on its first
 * weft_setspecific, and their destructors run when it finishes.
 *
 * A key is (sequence << WF_KEY_SLOT_BITS) | slot; each value remembers the
 * sequence of the key it was stored under, so a deleted-and-recreated slot
 * never shows an old value.
 *
 * WEFT_KEYS_MAX is glibc's PTHREAD_KEYS_MAX (1024), which programs built
 * against glibc rely on.  A thread's values are kept in blocks of
 * WF_TSD_BLOCK slots, each allocated when the thread first sets a key of
 * that block (glibc's own layout): a thread that uses a few low keys pays
 * for one block, not for 1024 slots (16 KiB).
 */
#include <errno.h>
#include <stdlib.h>
#include "sched_internal.h"

#define WF_DESTRUCTOR_ROUNDS 4
#define WF_KEY_SLOT_BITS 10
#define WF_TSD_BLOCK 32
#define WF_TSD_BLOCKS (WEFT_KEYS_MAX / WF_TSD_BLOCK)
_Static_assert(WEFT_KEYS_MAX <= (1 << WF_KEY_SLOT_BITS) && WEFT_KEYS_MAX % WF_TSD_BLOCK == 0,
               "key slots must fit the key encoding and whole blocks");

struct wf_tsd_block { struct { void *v; uint32_t seq; } slot[WF_TSD_BLOCK]; };
struct wf_tsd { struct wf_tsd_block *blk[WF_TSD_BLOCKS]; };

static wf_spin_t wf_keys_lock = WF_SPIN_INIT;
static struct {
	_Atomic uint32_t seq;        /* odd: in use */
	void (*_Atomic dtor)(void *);
} wf_keys[WEFT_KEYS_MAX];

static bool wf_key_decode(weft_key_t k, uint32_t *slot, uint32_t *seq)
{
	*slot = k & ((1u << WF_KEY_SLOT_BITS) - 1);
	*seq = k >> WF_KEY_SLOT_BITS;
	return *slot < WEFT_KEYS_MAX && (*seq & 1) &&
	       atomic_load_explicit(&wf_keys[*slot].seq, memory_order_acquire) == *seq;
}

int weft_key_create(weft_key_t *k, void (*destructor)(void *))
{
	if (!k)
		return EINVAL;
	int e = EAGAIN;
	wf_spin_lock(&wf_keys_lock);
	for (uint32_t i = 0; i < WEFT_KEYS_MAX; i++) {
		uint32_t s = atomic_load_explicit(&wf_keys[i].seq, memory_order_relaxed);
		if (s & 1 || s >= (1u << (32 - WF_KEY_SLOT_BITS)) - 2)
			continue;
		atomic_store_explicit(&wf_keys[i].dtor, destructor, memory_order_relaxed);
		atomic_store_explicit(&wf_keys[i].seq, s + 1, memory_order_release);
		*k = ((s + 1) << WF_KEY_SLOT_BITS) | i;
		e = 0;
		break;
	}
	wf_spin_unlock(&wf_keys_lock);
	return e;
}

int weft_key_delete(weft_key_t k)
{
	uint32_t slot, seq;
	wf_spin_lock(&wf_keys_lock);
	int e = wf_key_decode(k, &slot, &seq) ? 0 : EINVAL;
	if (!e)
		atomic_store_explicit(&wf_keys[slot].seq, seq + 1, memory_order_release);
	wf_spin_unlock(&wf_keys_lock);
	return e;
}

void *weft_getspecific(weft_key_t k)
{
	struct wf_thread *t = wf_current();
	uint32_t slot, seq;
	if (!t || !t->tsd || !wf_key_decode(k, &slot, &seq))
		return NULL;
	struct wf_tsd_block *b = t->tsd->blk[slot / WF_TSD_BLOCK];
	if (!b || b->slot[slot % WF_TSD_BLOCK].seq != seq)
		return NULL;
	return b->slot[slot % WF_TSD_BLOCK].v;
}

int weft_setspecific(weft_key_t k, const void *v)
{
	uint32_t slot, seq;
	if (!wf_key_decode(k, &slot, &seq))
		return EINVAL;
	/* A value needs a green thread: the first weft call that needs the
	 * runtime initializes it and makes its caller "main" (docs/design.md,
	 * "Configuration and errors"). */
	wf_runtime_ensure();
	struct wf_thread *t = wf_current();
	if (!t || t->kind == WF_KIND_IDLE)
		return EPERM;
	if (!t->tsd && !(t->tsd = calloc(1, sizeof *t->tsd)))
		return ENOMEM;
	struct wf_tsd_block **b = &t->tsd->blk[slot / WF_TSD_BLOCK];
	if (!*b && !(*b = calloc(1, sizeof **b)))
		return ENOMEM;
	(*b)->slot[slot % WF_TSD_BLOCK].v = (void *)v;
	(*b)->slot[slot % WF_TSD_BLOCK].seq = seq;
	return 0;
}

/* Run destructors of the values of t (the caller), POSIX style: repeat
 * while destructors set new values, at most WF_DESTRUCTOR_ROUNDS times. */
void wf_tsd_run_destructors(struct wf_thread *t)
{
	for (int round = 0; t->tsd && round < WF_DESTRUCTOR_ROUNDS; round++) {
		bool again = false;
		for (uint32_t i = 0; i < WEFT_KEYS_MAX; i++) {
			struct wf_tsd_block *b = t->tsd->blk[i / WF_TSD_BLOCK];
			if (!b) {
				i += WF_TSD_BLOCK - 1;   /* nothing set in this block */
				continue;
			}
			void *v = b->slot[i % WF_TSD_BLOCK].v;
			uint32_t seq = b->slot[i % WF_TSD_BLOCK].seq;
			void (*dtor)(void *) = atomic_load(&wf_keys[i].dtor);
			if (!v || atomic_load(&wf_keys[i].seq) != seq)
				continue;
			b->slot[i % WF_TSD_BLOCK].v = NULL;
			if (dtor) {
				dtor(v);
				again = true;
			}
			t = wf_current();  /* a destructor may block and migrate */
		}
		if (!again)
			break;
	}
	for (int i = 0; i < WF_TSD_BLOCKS; i++)
		free(t->tsd->blk[i]);
	free(t->tsd);
	t->tsd = NULL;
}

/* fork(): the key table's lock is held across it (fork.c). */
void wf_keys_fork_lock(void) { wf_spin_lock(&wf_keys_lock); }
void wf_keys_fork_unlock(void) { wf_spin_unlock(&wf_keys_lock); }
