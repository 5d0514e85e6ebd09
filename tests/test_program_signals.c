/*
 * test_program_signals.c — a program's own signal handlers beside weft's
 * preemption (docs/design.md, "The program's signal handlers").
 *
 * Before weft owned the program's handlers, a tick that landed in one
 * switched threads inside it, on top of whatever it had interrupted: 8
 * threads yielding on one worker at a 100 us quantum hung while a pthread
 * signalled the process, and the same with malloc/free crashed.  Here the
 * same storms must end with every block intact and every signal handled;
 * sigaction and signal must report the program's own actions, one-shot
 * handlers must reset, and a program may handle the tick's own signal.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "weft_check.h"

static atomic_bool stop;
static atomic_long handled, corrupt;

static void slow_handler(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
	for (volatile int i = 0; i < 20000; i++)   /* a wide target for ticks */
		;
}

static void *allocator(void *arg)
{
	(void)arg;
	long n = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned char *p = malloc(100);
		memset(p, (int)(n & 0xff), 100);
		for (int i = 0; i < 100; i += 33)
			if (p[i] != (unsigned char)(n & 0xff))
				atomic_fetch_add(&corrupt, 1);
		free(p);
		n++;
	}
	return (void *)n;
}

static void *yielder(void *arg)
{
	(void)arg;
	long n = 0;
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		weft_yield();
		n++;
	}
	return (void *)n;
}

/* 1,000 process-directed signals, each sent once the handler of the one
 * before has started: none can merge with a pending one, so each is
 * handled, on a worker (the killer blocks the signal), however the
 * machine's load delays them.  Returns how many the handler did not start
 * within a second (each one a failure). */
static void *killer(void *arg)
{
	(void)arg;
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	long lost = 0;
	for (int i = 0; i < 1000; i++) {
		int before = atomic_load(&handled);
		kill(getpid(), SIGUSR1);
		struct timespec ts = { 0, 50000 };
		for (int w = 0; w < 20000 && atomic_load(&handled) == before; w++)
			nanosleep(&ts, NULL);
		if (atomic_load(&handled) == before)
			lost++;
	}
	atomic_store(&stop, true);
	return (void *)lost;
}

static void install(int sig, void (*h)(int), int flags)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = h;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	ck_assert_int_eq(sigaction(sig, &sa, NULL), 0);
}

static void storm(void *(*fn)(void *), bool handler_first)
{
	setenv("WEFT_WORKERS", "1", 1);
	setenv("WEFT_QUANTUM_US", "100", 1);
	if (handler_first)
		install(SIGUSR1, slow_handler, 0);
	ck_assert_int_eq(weft_init(), 0);
	if (!handler_first)
		install(SIGUSR1, slow_handler, 0);
	weft_t t[8];
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, fn, NULL), 0);
	pthread_t k;
	ck_assert_int_eq(pthread_create(&k, NULL, killer, NULL), 0);
	long ops = 0;
	for (int i = 0; i < 8; i++) {
		void *r;
		ck_assert_int_eq(weft_join(t[i], &r), 0);
		ops += (long)r;
	}
	void *lost;
	ck_assert_int_eq(pthread_join(k, &lost), 0);
	ck_assert_int_gt(ops, 0);
	ck_assert_int_eq(atomic_load(&corrupt), 0);
	ck_assert_msg(lost == NULL, "%ld signals not handled within a second", (long)lost);
	ck_assert_int_eq(atomic_load(&handled), 1000);
}

START_TEST(t_storm_malloc_handler_after_init) { storm(allocator, false); }
END_TEST

START_TEST(t_storm_malloc_handler_before_init) { storm(allocator, true); }
END_TEST

START_TEST(t_storm_yield_handler_after_init) { storm(yielder, false); }
END_TEST

START_TEST(t_storm_yield_handler_before_init) { storm(yielder, true); }
END_TEST

static void h1(int sig) { (void)sig; }
static void h2(int sig) { (void)sig; }
static void info_handler(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; }

START_TEST(t_sigaction_reports_program_actions)
{
	ck_assert_int_eq(weft_init(), 0);
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGUSR1);
	ck_assert_int_eq(sigaction(SIGUSR2, &sa, NULL), 0);
	ck_assert_int_eq(sigaction(SIGUSR2, NULL, &old), 0);
	ck_assert_ptr_eq(old.sa_sigaction, info_handler);
	ck_assert(old.sa_flags & SA_SIGINFO);
	ck_assert(old.sa_flags & SA_RESTART);
	ck_assert(sigismember(&old.sa_mask, SIGUSR1));
	ck_assert_ptr_eq(signal(SIGUSR2, h1), (sighandler_t)(void (*)(void))info_handler);
	ck_assert_ptr_eq(signal(SIGUSR2, h2), h1);
	ck_assert_ptr_eq(signal(SIGUSR2, SIG_IGN), h2);
	ck_assert_ptr_eq(signal(SIGUSR2, SIG_DFL), SIG_IGN);
	/* Bad input is libc's answer. */
	errno = 0;
	ck_assert_int_eq(sigaction(SIGKILL, &sa, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(sigaction(0, &sa, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_eq(signal(9999, h1), SIG_ERR);
}
END_TEST

static atomic_int oneshot_runs;
static void oneshot(int sig) { (void)sig; atomic_fetch_add(&oneshot_runs, 1); }

START_TEST(t_one_shot_handler_resets)
{
	ck_assert_int_eq(weft_init(), 0);
	install(SIGUSR2, oneshot, SA_RESETHAND);
	ck_assert_int_eq(raise(SIGUSR2), 0);
	ck_assert_int_eq(atomic_load(&oneshot_runs), 1);
	struct sigaction now;
	ck_assert_int_eq(sigaction(SIGUSR2, NULL, &now), 0);
	ck_assert_ptr_eq(now.sa_handler, SIG_DFL);
	/* And sysv_signal's one-shot semantics likewise. */
	ck_assert_ptr_eq(sysv_signal(SIGUSR2, oneshot), SIG_DFL);
	ck_assert_int_eq(raise(SIGUSR2), 0);
	ck_assert_int_eq(atomic_load(&oneshot_runs), 2);
	ck_assert_int_eq(sigaction(SIGUSR2, NULL, &now), 0);
	ck_assert_ptr_eq(now.sa_handler, SIG_DFL);
}
END_TEST

static atomic_int alarms;
static void on_alarm(int sig) { (void)sig; atomic_fetch_add(&alarms, 1); }

static void *busy(void *arg)
{
	(void)arg;
	while (!atomic_load_explicit(&stop, memory_order_relaxed))
		;
	return NULL;
}

START_TEST(t_program_handles_the_tick_signal)
{
	/* SIGALRM is weft's tick signal here; the program installs its own
	 * handler for it after weft started, and alarm() still reaches it
	 * exactly once while ticks preempt two spinners on one worker. */
	setenv("WEFT_WORKERS", "1", 1);
	setenv("WEFT_QUANTUM_US", "1000", 1);
	ck_assert_int_eq(weft_init(), 0);
	install(SIGALRM, on_alarm, 0);
	weft_t t[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_create(&t[i], NULL, busy, NULL), 0);
	alarm(1);
	weft_sleep_ns(1300000000ull);
	atomic_store(&stop, true);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(weft_join(t[i], NULL), 0);
	weft_stats_t s;
	ck_assert_int_eq(weft_stats_get(-1, &s), 0);
	ck_assert_uint_gt(s.preemptions, 10);
	ck_assert_int_eq(atomic_load(&alarms), 1);
	struct sigaction now;
	ck_assert_int_eq(sigaction(SIGALRM, NULL, &now), 0);
	ck_assert_ptr_eq(now.sa_handler, on_alarm);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("program_signals");
	TCase *tc = tcase_create("program_signals");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_storm_malloc_handler_after_init);
	tcase_add_test(tc, t_storm_malloc_handler_before_init);
	tcase_add_test(tc, t_storm_yield_handler_after_init);
	tcase_add_test(tc, t_storm_yield_handler_before_init);
	tcase_add_test(tc, t_sigaction_reports_program_actions);
	tcase_add_test(tc, t_one_shot_handler_resets);
	tcase_add_test(tc, t_program_handles_the_tick_signal);
	suite_add_tcase(s, tc);
	return weft_check_run(s);
}
