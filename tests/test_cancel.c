/*
 * test_cancel.c — deferred and asynchronous cancellation, cleanup handlers
 * and the way out of a thread (docs/design.md, "Cancellation").
 *
 * Each cancellation point is attacked twice: with the request made while
 * the target is parked in it (it must leave the object's queue without
 * consuming anything), and with the request pending before it blocks.
 * Then the rules around it: cleanup order, destructors after the handlers,
 * the mutex of a cond wait held by the handlers, the disabled state, the
 * calls that are not cancellation points, weft_exit, asynchronous
 * cancellation of a spinning thread, and cancellation racing wake-ups.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sync_helpers.h"
#include "child_capture.h"
#include "sched/sched_internal.h"   /* white-box: is a thread parked */

/* Wait until t is parked in a wait (its wait word says WAITING). */
static void wait_parked(weft_t h)
{
	struct wf_thread *t = wf_tcb_lookup(h);
	ck_assert_ptr_nonnull(t);
	uint64_t end = now_ns() + 5000 * MS;
	while ((atomic_load(&t->wait) & WF_WAIT_KIND) != WF_WAIT_WAITING ||
	       atomic_load(&t->on_cpu)) {
		ck_assert_msg(now_ns() < end, "thread never parked");
		weft_sleep_ns(50000);
	}
}

/* The event log of a test: cleanup handlers and destructors append. */
static char log_buf[64];
static atomic_int log_len;
static void log_add(char c)
{
	int i = atomic_fetch_add(&log_len, 1);
	if (i < (int)sizeof log_buf - 1)
		log_buf[i] = c;
}
static void log_reset(void)
{
	memset(log_buf, 0, sizeof log_buf);
	atomic_store(&log_len, 0);
}
static void cleanup_log(void *arg) { log_add((char)(intptr_t)arg); }

static atomic_int reached, after;

/* --- each cancellation point, cancelled while parked ---------------------- */

static weft_mutex_t m = WEFT_MUTEX_INITIALIZER;
static weft_cond_t c = WEFT_COND_INITIALIZER;
static weft_sem_t sem;
static weft_rwlock_t rw = WEFT_RWLOCK_INITIALIZER;
static weft_barrier_t bar;
static atomic_int mutex_held_in_cleanup;

static void unlock_m(void *arg)
{
	(void)arg;
	/* An error-checking unlock succeeds only for the holder. */
	atomic_store(&mutex_held_in_cleanup, weft_mutex_unlock(&m) == 0);
	log_add('u');
}

static void *sleeper(void *arg)
{
	(void)arg;
	weft_cleanup_push(cleanup_log, (void *)'s');
	atomic_store(&reached, 1);
	weft_sleep_ns(60ull * 1000 * MS);
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

static void *joiner_of_main_child(void *arg)
{
	weft_t target = (weft_t)arg;
	weft_cleanup_push(cleanup_log, (void *)'j');
	atomic_store(&reached, 1);
	weft_join(target, NULL);
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

static void *cond_waiter(void *arg)
{
	int timed = (int)(intptr_t)arg;
	weft_mutex_lock(&m);
	weft_cleanup_push(unlock_m, NULL);
	atomic_store(&reached, 1);
	struct timespec dl = ts_in(60ull * 1000 * MS);
	for (;;)   /* no predicate ever becomes true */
		if (timed)
			weft_cond_timedwait(&c, &m, &dl);
		else
			weft_cond_wait(&c, &m);
	weft_cleanup_pop(1);
	return NULL;
}

static void *sem_waiter(void *arg)
{
	int timed = (int)(intptr_t)arg;
	weft_cleanup_push(cleanup_log, (void *)'w');
	atomic_store(&reached, 1);
	struct timespec dl = ts_in(60ull * 1000 * MS);
	int r = timed ? weft_sem_timedwait(&sem, &dl) : weft_sem_wait(&sem);
	atomic_store(&after, r == 0 ? 1 : 2);
	weft_cleanup_pop(0);
	return NULL;
}

static void *rw_waiter(void *arg)
{
	int write = (int)(intptr_t)arg & 1, timed = (int)(intptr_t)arg & 2;
	weft_cleanup_push(cleanup_log, (void *)'r');
	atomic_store(&reached, 1);
	struct timespec dl = ts_in(60ull * 1000 * MS);
	if (write)
		timed ? weft_rwlock_timedwrlock(&rw, &dl) : weft_rwlock_wrlock(&rw);
	else
		timed ? weft_rwlock_timedrdlock(&rw, &dl) : weft_rwlock_rdlock(&rw);
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

static void *barrier_waiter(void *arg)
{
	(void)arg;
	weft_cleanup_push(cleanup_log, (void *)'b');
	atomic_store(&reached, 1);
	weft_barrier_wait(&bar);
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

static int io_fds[2];
static atomic_int go_on;

static void *io_waiter(void *arg)
{
	int how = (int)(intptr_t)arg;
	weft_cleanup_push(cleanup_log, (void *)'i');
	atomic_store(&reached, 1);
	char c;
	if (how == 0) {
		weft_read(io_fds[0], &c, 1);
	} else if (how == 1) {
		struct pollfd p = { .fd = io_fds[0], .events = POLLIN };
		weft_poll(&p, 1, -1);
	} else {
		weft_read_until(io_fds[0], &c, 1, weft_now_ns() + 60000 * MS);
	}
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

static void *forever(void *arg)
{
	(void)arg;
	weft_sem_t never;
	weft_sem_init(&never, 0);
	weft_sem_wait(&never);
	return NULL;
}

/* Start fn(arg) on the other worker's side of things, wait until it is
 * parked, cancel it, and check that it finished cancelled, having run its
 * cleanup handler `tag` and nothing after its wait. */
static void cancel_parked(void *(*fn)(void *), void *arg, char tag)
{
	log_reset();
	atomic_store(&reached, 0);
	atomic_store(&after, 0);
	weft_t t = spawn(fn, arg);
	ck_assert(wait_atomic(&reached, 1, 5000));
	wait_parked(t);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_int_eq(atomic_load(&after), 0);
	ck_assert_int_eq(atomic_load(&log_len), 1);
	ck_assert_int_eq(log_buf[0], tag);
}

START_TEST(t_cancel_parked_sleep)
{
	setup();
	cancel_parked(sleeper, NULL, 's');
}
END_TEST

START_TEST(t_cancel_parked_join)
{
	setup();
	weft_t target = spawn(forever, NULL);
	cancel_parked(joiner_of_main_child, (void *)target, 'j');
	/* The cancelled join withdrew: the target is still joinable. */
	ck_assert_int_eq(weft_cancel(target), 0);
	ck_assert_ptr_eq(join(target), WEFT_CANCELED);
}
END_TEST

/* The I/O calls that wait for a descriptor: a cancelled waiter leaves
 * the descriptor's record, and a byte written afterwards is still there
 * for the next reader. */
START_TEST(t_cancel_parked_io)
{
	setup();
	ck_assert_int_eq(pipe(io_fds), 0);
	for (int how = 0; how < 3; how++) {
		cancel_parked(io_waiter, (void *)(intptr_t)how, 'i');
		ck_assert_int_eq(write(io_fds[1], "x", 1), 1);
		char c;
		ck_assert_int_eq(weft_read(io_fds[0], &c, 1), 1);
	}
}
END_TEST

/* A call on a regular file blocks in the kernel, never in the poller: it
 * is a cancellation point at its entry. */
static void *file_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	weft_cleanup_push(cleanup_log, (void *)'f');
	weft_setcancelstate(WEFT_CANCEL_DISABLE, NULL);
	atomic_store(&reached, 1);
	while (!atomic_load(&go_on))
		weft_yield();   /* the request arrives meanwhile, held pending */
	weft_setcancelstate(WEFT_CANCEL_ENABLE, NULL);
	char c;
	weft_pread(fd, &c, 1, 0);
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

START_TEST(t_cancel_at_kernel_io)
{
	setup();
	log_reset();
	FILE *f = tmpfile();
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputc('z', f), 'z');
	ck_assert_int_eq(fflush(f), 0);
	weft_t t = spawn(file_reader, (void *)(intptr_t)fileno(f));
	ck_assert(wait_atomic(&reached, 1, 5000));
	ck_assert_int_eq(weft_cancel(t), 0);
	atomic_store(&go_on, 1);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_int_eq(atomic_load(&after), 0);
	ck_assert_int_eq(log_buf[0], 'f');
	fclose(f);
}
END_TEST

static void cond_case(int timed)
{
	setup();
	m = (weft_mutex_t)WEFT_MUTEX_ERRORCHECK_INITIALIZER;
	atomic_store(&mutex_held_in_cleanup, 0);
	cancel_parked(cond_waiter, (void *)(intptr_t)timed, 'u');
	ck_assert_int_eq(atomic_load(&mutex_held_in_cleanup), 1);
	/* Off the cond's queue, and the mutex is free again. */
	ck_assert_int_eq(wait_count(&c._wq), 0);
	ck_assert_int_eq(weft_mutex_trylock(&m), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_int_eq(weft_cond_destroy(&c), 0);
}

START_TEST(t_cancel_parked_cond_wait) { cond_case(0); }
END_TEST

START_TEST(t_cancel_parked_cond_timedwait) { cond_case(1); }
END_TEST

static void sem_case(int timed)
{
	setup();
	ck_assert_int_eq(weft_sem_init(&sem, 0), 0);
	cancel_parked(sem_waiter, (void *)(intptr_t)timed, 'w');
	ck_assert_int_eq(wait_count(&sem._wq), 0);
	/* A post after the cancellation is not lost to the departed waiter. */
	ck_assert_int_eq(weft_sem_post(&sem), 0);
	int v = -1;
	ck_assert_int_eq(weft_sem_getvalue(&sem, &v), 0);
	ck_assert_int_eq(v, 1);
	ck_assert_int_eq(weft_sem_destroy(&sem), 0);
}

START_TEST(t_cancel_parked_sem_wait) { sem_case(0); }
END_TEST

START_TEST(t_cancel_parked_sem_timedwait) { sem_case(1); }
END_TEST

static void *rw_reader(void *arg)
{
	(void)arg;
	T_CHECK(weft_rwlock_rdlock(&rw) == 0);
	T_CHECK(weft_rwlock_unlock(&rw) == 0);
	return NULL;
}

static void rw_case(int write)
{
	setup();
	ck_assert_int_eq(weft_rwlock_wrlock(&rw), 0);
	cancel_parked(rw_waiter, (void *)(intptr_t)write, 'r');
	/* The queue is empty and WAITERS is gone: readers get in at once
	 * after the unlock, and the lock can be destroyed. */
	ck_assert_int_eq(wait_count(&rw._wq), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&rw), 0);
	ck_assert_int_eq(weft_rwlock_tryrdlock(&rw), 0);
	ck_assert_int_eq(weft_rwlock_unlock(&rw), 0);
	spawn_join(4, rw_reader);
	ASSERT_NO_FAILS();
	ck_assert_int_eq(weft_rwlock_destroy(&rw), 0);
}

START_TEST(t_cancel_parked_rwlock_read) { rw_case(0); }
END_TEST

START_TEST(t_cancel_parked_rwlock_write) { rw_case(1); }
END_TEST

/* The timed variants are cancellation points too. */
START_TEST(t_cancel_parked_rwlock_timedread) { rw_case(2); }
END_TEST

START_TEST(t_cancel_parked_rwlock_timedwrite) { rw_case(3); }
END_TEST

static void *barrier_pass(void *arg)
{
	(void)arg;
	int r = weft_barrier_wait(&bar);
	return (void *)(intptr_t)(r == WEFT_BARRIER_SERIAL_THREAD);
}

START_TEST(t_cancel_parked_barrier)
{
	setup();
	ck_assert_int_eq(weft_barrier_init(&bar, 2), 0);
	cancel_parked(barrier_waiter, NULL, 'b');
	/* Its arrival was withdrawn: two new arrivals make a phase. */
	weft_t a = spawn(barrier_pass, NULL), b = spawn(barrier_pass, NULL);
	intptr_t serial = (intptr_t)join(a) + (intptr_t)join(b);
	ck_assert_int_eq(serial, 1);
	ck_assert_int_eq(weft_barrier_destroy(&bar), 0);
}
END_TEST

/* --- a request pending before the point is reached ---------------------- */

static weft_sem_t go;
static weft_mutex_t gate = WEFT_MUTEX_INITIALIZER;

/* Parked in a mutex lock (not a point) while the request arrives, then
 * into a point with it pending. */
static void *late_point(void *arg)
{
	int which = (int)(intptr_t)arg;
	weft_cleanup_push(cleanup_log, (void *)'p');
	weft_mutex_lock(&gate);
	weft_mutex_unlock(&gate);
	atomic_store(&reached, 1);
	switch (which) {
	case 0: weft_sleep_ns(60ull * 1000 * MS); break;
	case 1: weft_testcancel(); break;
	case 2: {
		weft_sem_t s0;
		weft_sem_init(&s0, 0);
		weft_sem_wait(&s0);
		break;
	}
	case 3:
		weft_mutex_lock(&m);
		weft_cond_wait(&c, &m);
		break;
	case 4: {
		weft_t t = spawn(forever, NULL);
		weft_join(t, NULL);
		break;
	}
	}
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

START_TEST(t_cancel_pending_before_point)
{
	setup();
	for (int which = 0; which < 5; which++) {
		log_reset();
		atomic_store(&after, 0);
		atomic_store(&reached, 0);
		m = (weft_mutex_t)WEFT_MUTEX_INITIALIZER;
		ck_assert_int_eq(weft_mutex_lock(&gate), 0);
		weft_t t = spawn(late_point, (void *)(intptr_t)which);
		wait_parked(t);
		ck_assert_int_eq(weft_cancel(t), 0);   /* parked in a mutex lock: pending */
		ck_assert_int_eq(weft_mutex_unlock(&gate), 0);
		ck_assert_ptr_eq(join(t), WEFT_CANCELED);
		ck_assert_int_eq(atomic_load(&reached), 1);
		ck_assert_int_eq(atomic_load(&after), 0);
		ck_assert_int_eq(log_buf[0], 'p');
	}
}
END_TEST

static void *self_cancel(void *arg)
{
	int which = (int)(intptr_t)arg;
	weft_cleanup_push(cleanup_log, (void *)'q');
	weft_cancel(weft_self());   /* deferred: nothing happens yet */
	atomic_store(&reached, 1);
	if (which == 0)
		weft_sleep_ns(60ull * 1000 * MS);
	else
		weft_testcancel();
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

START_TEST(t_cancel_self_deferred)
{
	setup();
	for (int which = 0; which < 2; which++) {
		log_reset();
		atomic_store(&reached, 0);
		atomic_store(&after, 0);
		weft_t t = spawn(self_cancel, (void *)(intptr_t)which);
		ck_assert_ptr_eq(join(t), WEFT_CANCELED);
		ck_assert_int_eq(atomic_load(&reached), 1);
		ck_assert_int_eq(atomic_load(&after), 0);
		ck_assert_str_eq(log_buf, "q");
	}
}
END_TEST

/* --- cleanup order, destructors, weft_exit --------------------------------- */

static weft_key_t key;
static void key_dtor(void *v) { log_add((char)(intptr_t)v); }

static void *nested(void *arg)
{
	int exit_instead = (int)(intptr_t)arg;
	weft_setspecific(key, (void *)'K');
	weft_cleanup_push(cleanup_log, (void *)'1');
	weft_cleanup_push(cleanup_log, (void *)'2');
	weft_cleanup_push(cleanup_log, (void *)'x');
	weft_cleanup_pop(1);   /* runs 'x' now */
	weft_cleanup_push(cleanup_log, (void *)'y');
	weft_cleanup_pop(0);   /* never runs 'y' */
	weft_cleanup_push(cleanup_log, (void *)'3');
	atomic_store(&reached, 1);
	if (exit_instead)
		weft_exit((void *)0x1234);
	weft_sleep_ns(60ull * 1000 * MS);
	weft_cleanup_pop(0);
	weft_cleanup_pop(0);
	weft_cleanup_pop(0);
	return NULL;
}

START_TEST(t_cleanup_order_then_destructors)
{
	setup();
	ck_assert_int_eq(weft_key_create(&key, key_dtor), 0);
	log_reset();
	atomic_store(&reached, 0);
	weft_t t = spawn(nested, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	wait_parked(t);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_str_eq(log_buf, "x321K");
}
END_TEST

START_TEST(t_exit_runs_cleanup_handlers)
{
	setup();
	ck_assert_int_eq(weft_key_create(&key, key_dtor), 0);
	log_reset();
	weft_t t = spawn(nested, (void *)1);
	ck_assert_ptr_eq(join(t), (void *)0x1234);
	ck_assert_str_eq(log_buf, "x321K");
}
END_TEST

/* A cleanup handler that blocks (and so may move to the other worker) and
 * that meets a cancellation point: the thread is already finishing, so the
 * point does not act again, and the handlers further out still run. */
static void blocking_cleanup(void *arg)
{
	(void)arg;
	weft_sleep_ns(2 * MS);
	weft_testcancel();
	log_add('B');
}

static void *blocking_handlers(void *arg)
{
	(void)arg;
	weft_cleanup_push(cleanup_log, (void *)'o');
	weft_cleanup_push(blocking_cleanup, NULL);
	atomic_store(&reached, 1);
	weft_sleep_ns(60ull * 1000 * MS);
	weft_cleanup_pop(0);
	weft_cleanup_pop(0);
	return NULL;
}

START_TEST(t_cleanup_handler_may_block)
{
	setup();
	log_reset();
	atomic_store(&reached, 0);
	weft_t t = spawn(blocking_handlers, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	wait_parked(t);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_str_eq(log_buf, "Bo");
}
END_TEST

/* --- the disabled state; calls that are not points ---------------------- */

static void *disabled(void *arg)
{
	(void)arg;
	int old = -1;
	T_CHECK(weft_setcancelstate(WEFT_CANCEL_DISABLE, &old) == 0);
	T_CHECK(old == WEFT_CANCEL_ENABLE);
	atomic_store(&reached, 1);
	/* Cancelled while disabled: every point below runs to its end. */
	T_CHECK(weft_sem_wait(&go) == 0);
	weft_sleep_ns(3 * MS);
	weft_testcancel();
	atomic_store(&after, 1);
	T_CHECK(weft_setcancelstate(WEFT_CANCEL_ENABLE, &old) == 0);
	T_CHECK(old == WEFT_CANCEL_DISABLE);
	atomic_store(&after, 2);
	weft_testcancel();   /* acts here */
	atomic_store(&after, 3);
	return NULL;
}

START_TEST(t_disabled_state)
{
	setup();
	ck_assert_int_eq(weft_sem_init(&go, 0), 0);
	atomic_store(&reached, 0);
	atomic_store(&after, 0);
	weft_t t = spawn(disabled, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	wait_parked(t);
	ck_assert_int_eq(weft_cancel(t), 0);
	nap_ms(5);
	ck_assert_int_eq(weft_sem_post(&go), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_int_eq(atomic_load(&after), 2);
	ASSERT_NO_FAILS();
}
END_TEST

static void *mutex_locker(void *arg)
{
	(void)arg;
	atomic_store(&reached, 1);
	T_CHECK(weft_mutex_lock(&m) == 0);   /* not a point: it gets the mutex */
	atomic_store(&after, 1);
	T_CHECK(weft_mutex_unlock(&m) == 0);
	weft_testcancel();
	atomic_store(&after, 2);
	return NULL;
}

START_TEST(t_mutex_lock_is_not_a_point)
{
	setup();
	m = (weft_mutex_t)WEFT_MUTEX_INITIALIZER;
	atomic_store(&reached, 0);
	atomic_store(&after, 0);
	ck_assert_int_eq(weft_mutex_lock(&m), 0);
	weft_t t = spawn(mutex_locker, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	wait_parked(t);
	ck_assert_int_eq(weft_cancel(t), 0);
	nap_ms(2);
	ck_assert_int_eq(atomic_load(&after), 0);
	ck_assert_int_eq(weft_mutex_unlock(&m), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_int_eq(atomic_load(&after), 1);
	ASSERT_NO_FAILS();
}
END_TEST

START_TEST(t_bad_input)
{
	setup();
	ck_assert_int_eq(weft_cancel(WEFT_NULL), ESRCH);
	ck_assert_int_eq(weft_cancel((weft_t)0x123456789ull), ESRCH);
	ck_assert_int_eq(weft_setcancelstate(7, NULL), EINVAL);
	ck_assert_int_eq(weft_setcanceltype(-1, NULL), EINVAL);
	int old = -1;
	ck_assert_int_eq(weft_setcanceltype(WEFT_CANCEL_DEFERRED, &old), 0);
	ck_assert_int_eq(old, WEFT_CANCEL_DEFERRED);
	/* A finished thread not yet joined: no effect, its result stands. */
	weft_t t = spawn(ret_arg, (void *)7);
	nap_ms(2);
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_ptr_eq(join(t), (void *)7);
	ck_assert_int_eq(weft_cancel(t), ESRCH);   /* stale */
	/* WEFT_CANCELED is no pointer a thread returns by accident. */
	ck_assert_ptr_ne(WEFT_CANCELED, NULL);
	ck_assert_ptr_ne(WEFT_CANCELED, (void *)-1);
}
END_TEST

static void *from_foreign(void *arg)
{
	/* A kernel thread that is not a worker may cancel, and gets EPERM for
	 * the calls that are the caller's own. */
	weft_t t = *(weft_t *)arg;
	T_CHECK(weft_setcancelstate(WEFT_CANCEL_DISABLE, NULL) == EPERM);
	weft_testcancel();
	T_CHECK(weft_cancel(t) == 0);
	return NULL;
}

START_TEST(t_cancel_from_foreign_thread)
{
	setup();
	atomic_store(&reached, 0);
	log_reset();
	weft_t t = spawn(sleeper, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	pthread_t p;
	ck_assert_int_eq(pthread_create(&p, NULL, from_foreign, &t), 0);
	ck_assert_int_eq(pthread_join(p, NULL), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ASSERT_NO_FAILS();
}
END_TEST

/* --- asynchronous cancellation ------------------------------------------- */

static volatile unsigned long spins;

static void *spinner(void *arg)
{
	(void)arg;
	int old = -1;
	T_CHECK(weft_setcanceltype(WEFT_CANCEL_ASYNCHRONOUS, &old) == 0);
	T_CHECK(old == WEFT_CANCEL_DEFERRED);
	weft_cleanup_push(cleanup_log, (void *)'a');
	atomic_store(&reached, 1);
	for (;;)
		spins++;   /* the program's own code: a safe point */
	weft_cleanup_pop(0);
	return NULL;
}

static void async_case(const char *workers)
{
	setenv("WEFT_WORKERS", workers, 1);
	setenv("WEFT_QUANTUM_US", "1000", 1);
	ck_assert_int_eq(weft_init(), 0);
	log_reset();
	atomic_store(&reached, 0);
	weft_t t = spawn(spinner, NULL);
	ck_assert(wait_atomic(&reached, 1, 5000));
	ck_assert_int_eq(weft_cancel(t), 0);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_str_eq(log_buf, "a");
	ASSERT_NO_FAILS();
}

START_TEST(t_async_cancel_spinner_one_worker) { async_case("1"); }
END_TEST

START_TEST(t_async_cancel_spinner_two_workers) { async_case("2"); }
END_TEST

static void *async_pending(void *arg)
{
	(void)arg;
	weft_cleanup_push(cleanup_log, (void *)'A');
	weft_cancel(weft_self());
	atomic_store(&reached, 1);
	weft_setcanceltype(WEFT_CANCEL_ASYNCHRONOUS, NULL);   /* acts here */
	atomic_store(&after, 1);
	weft_cleanup_pop(0);
	return NULL;
}

START_TEST(t_async_type_acts_on_pending)
{
	setup();
	log_reset();
	atomic_store(&after, 0);
	weft_t t = spawn(async_pending, NULL);
	ck_assert_ptr_eq(join(t), WEFT_CANCELED);
	ck_assert_int_eq(atomic_load(&after), 0);
	ck_assert_str_eq(log_buf, "A");
}
END_TEST

/* --- main ------------------------------------------------------------------ */

static void *cancel_main(void *arg)
{
	weft_t main_h = (weft_t)arg;
	weft_sleep_ns(2 * MS);
	weft_cancel(main_h);
	weft_sleep_ns(20 * MS);   /* main waits for us before the process ends */
	atomic_store(&after, 1);
	return NULL;
}

static void main_exit_report(void)
{
	/* Runs at exit(0): only once every thread, this one too, finished. */
	char c = atomic_load(&after) ? 'Y' : 'N';
	ssize_t r = write(STDERR_FILENO, &c, 1);
	(void)r;
}

static void cancelled_main(void *arg)
{
	(void)arg;
	setup_env();
	if (weft_init())
		_exit(3);
	atexit(main_exit_report);
	weft_t t;
	weft_create(&t, NULL, cancel_main, (void *)weft_self());
	weft_detach(t);
	weft_cleanup_push(cleanup_log, (void *)'M');
	for (;;)
		weft_sleep_ns(1000 * MS);
	weft_cleanup_pop(0);
}

START_TEST(t_cancel_main)
{
	char err[256];
	int st = weft_test_run_captured(cancelled_main, NULL, err, sizeof err);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d, stderr: %s", st, err);
	ck_assert_str_eq(err, "Y");
}
END_TEST

/* --- cancellation racing wake-ups -------------------------------------------- */

/* Waiters on a semaphore and on a condition variable are cancelled at
 * random while posters and signallers hand out tokens and signals: no
 * token may be lost or doubled (every post is consumed by exactly one
 * thread that returns from its wait, or is left in the count), and nothing
 * hangs. */
#define RACE_WAITERS 24
static atomic_long consumed, woke;
static long cond_tokens;

static void *race_sem(void *arg)
{
	(void)arg;
	for (;;) {
		if (weft_sem_wait(&sem) == 0)
			atomic_fetch_add(&consumed, 1);
	}
	return NULL;
}

static void unlock_plain(void *arg) { weft_mutex_unlock(arg); }

static void *race_cond(void *arg)
{
	(void)arg;
	for (;;) {
		weft_mutex_lock(&m);
		weft_cleanup_push(unlock_plain, &m);
		while (cond_tokens == 0)
			weft_cond_wait(&c, &m);
		cond_tokens--;
		atomic_fetch_add(&woke, 1);
		weft_cleanup_pop(1);
	}
	return NULL;
}

START_TEST(t_cancel_races_wakeups)
{
	setup();
	m = (weft_mutex_t)WEFT_MUTEX_INITIALIZER;
	ck_assert_int_eq(weft_sem_init(&sem, 0), 0);
	uint32_t seed = 12345;
	long posts = 0, tokens = 0;
	for (int round = 0; round < 40; round++) {
		weft_t t[RACE_WAITERS];
		for (int i = 0; i < RACE_WAITERS; i++)
			t[i] = spawn(i & 1 ? race_sem : race_cond, NULL);
		for (int k = 0; k < 64; k++) {
			ck_assert_int_eq(weft_sem_post(&sem), 0);
			posts++;
			weft_mutex_lock(&m);
			cond_tokens++;
			tokens++;
			weft_cond_signal(&c);
			weft_mutex_unlock(&m);
			if (rnd(&seed) % 4 == 0)
				weft_yield();
		}
		for (int i = 0; i < RACE_WAITERS; i++)
			ck_assert_int_eq(weft_cancel(t[i]), 0);
		for (int i = 0; i < RACE_WAITERS; i++)
			ck_assert_ptr_eq(join(t[i]), WEFT_CANCELED);
		ck_assert_int_eq(wait_count(&sem._wq), 0);
		ck_assert_int_eq(wait_count(&c._wq), 0);
	}
	int v = 0;
	ck_assert_int_eq(weft_sem_getvalue(&sem, &v), 0);
	ck_assert_int_eq(atomic_load(&consumed) + v, posts);
	ck_assert_int_eq(atomic_load(&woke) + cond_tokens, tokens);
}
END_TEST

static Suite *cancel_suite(void)
{
	Suite *s = suite_create("cancel");
	TCase *tc = tcase_create("points");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_cancel_parked_sleep);
	tcase_add_test(tc, t_cancel_parked_join);
	tcase_add_test(tc, t_cancel_parked_cond_wait);
	tcase_add_test(tc, t_cancel_parked_cond_timedwait);
	tcase_add_test(tc, t_cancel_parked_sem_wait);
	tcase_add_test(tc, t_cancel_parked_sem_timedwait);
	tcase_add_test(tc, t_cancel_parked_rwlock_read);
	tcase_add_test(tc, t_cancel_parked_rwlock_write);
	tcase_add_test(tc, t_cancel_parked_rwlock_timedread);
	tcase_add_test(tc, t_cancel_parked_rwlock_timedwrite);
	tcase_add_test(tc, t_cancel_parked_barrier);
	tcase_add_test(tc, t_cancel_parked_io);
	tcase_add_test(tc, t_cancel_at_kernel_io);
	tcase_add_test(tc, t_cancel_pending_before_point);
	tcase_add_test(tc, t_cancel_self_deferred);
	suite_add_tcase(s, tc);

	tc = tcase_create("rules");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_cleanup_order_then_destructors);
	tcase_add_test(tc, t_exit_runs_cleanup_handlers);
	tcase_add_test(tc, t_cleanup_handler_may_block);
	tcase_add_test(tc, t_disabled_state);
	tcase_add_test(tc, t_mutex_lock_is_not_a_point);
	tcase_add_test(tc, t_bad_input);
	tcase_add_test(tc, t_cancel_from_foreign_thread);
	tcase_add_test(tc, t_cancel_main);
	suite_add_tcase(s, tc);

	tc = tcase_create("async");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_async_cancel_spinner_one_worker);
	tcase_add_test(tc, t_async_cancel_spinner_two_workers);
	tcase_add_test(tc, t_async_type_acts_on_pending);
	suite_add_tcase(s, tc);

	tc = tcase_create("races");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_cancel_races_wakeups);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return weft_check_run(cancel_suite());
}
