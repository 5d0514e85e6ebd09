/*
 * pt_sigfork.c — signals for one thread and fork() through the layer:
 * pthread_kill runs the handler on the thread it names (a parked one's
 * sem_wait fails with EINTR), pthread_sigmask and sigprocmask give each
 * thread its own mask (a signal sent to a thread that blocks it waits until
 * it unblocks it), and pthread_atfork's handlers run in the POSIX order
 * around a fork() from a thread while others lock and create, the child
 * creating threads of its own and using a lock a prepare handler held.
 */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "pt_test.h"

static _Atomic pthread_t ran_on;
static atomic_int usr1_runs;
static void on_usr1(int sig)
{
	(void)sig;
	atomic_store(&ran_on, pthread_self());
	atomic_fetch_add(&usr1_runs, 1);
}

static sem_t parked, never;

static atomic_int wait_rc, wait_errno, woke;
static void *sleeper(void *a)
{
	(void)a;
	sem_post(&parked);
	atomic_store(&wait_rc, sem_wait(&never));
	atomic_store(&wait_errno, errno);
	atomic_store(&woke, 1);
	return NULL;
}

/* Blocks SIGUSR1 with pthread_sigmask (or sigprocmask when a != NULL),
 * waits, and unblocks it: the pending signal's handler runs before the
 * unblocking call returns, on this thread. */
static atomic_int blocked_runs_before, blocked_runs_after;
static void *blocker(void *a)
{
	sigset_t s, cur;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR1);
	if (a)
		CHECK_EQ(sigprocmask(SIG_BLOCK, &s, NULL), 0);
	else
		CHECK_EQ(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
	CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
	CHECK(sigismember(&cur, SIGUSR1));
	sem_post(&parked);
	sem_wait(&never);   /* not interrupted: blocked */
	atomic_store(&blocked_runs_before, atomic_load(&usr1_runs));
	if (a)
		CHECK_EQ(sigprocmask(SIG_UNBLOCK, &s, NULL), 0);
	else
		CHECK_EQ(pthread_sigmask(SIG_UNBLOCK, &s, NULL), 0);
	atomic_store(&blocked_runs_after, atomic_load(&usr1_runs));
	CHECK(pthread_equal(atomic_load(&ran_on), pthread_self()));
	return NULL;
}

/* ---- fork ---- */
static char order[16];
static atomic_int norder;
static void rec(char c)
{
	int i = atomic_fetch_add(&norder, 1);
	if (i < (int)sizeof order - 1)
		order[i] = c;
}
static void prep1(void) { rec('1'); }
static void prep2(void) { rec('2'); }
static void par1(void) { rec('a'); }
static void par2(void) { rec('b'); }
static void ch1(void) { rec('x'); }
static void ch2(void) { rec('y'); }

/* POSIX's idiom: a lock taken across the fork by a prepare handler and
 * released in the parent and the child.  Only the forking threads use it:
 * a weft mutex whose wait queue another thread was updating at the fork
 * cannot be used in the child (docs/guide.md, "Cancellation, signals and
 * fork"). */
static pthread_mutex_t lk = PTHREAD_MUTEX_INITIALIZER;
static void lock_lk(void) { pthread_mutex_lock(&lk); }
static void unlock_lk(void) { pthread_mutex_unlock(&lk); }

static atomic_int stop;
static pthread_mutex_t churn_lk = PTHREAD_MUTEX_INITIALIZER;
static long counter;
static void *noop(void *a) { return a; }
static void *churn(void *a)
{
	(void)a;
	while (!atomic_load(&stop)) {
		pthread_mutex_lock(&churn_lk);
		counter++;
		pthread_mutex_unlock(&churn_lk);
		pthread_t t;
		if (pthread_create(&t, NULL, noop, NULL) == 0)
			pthread_join(t, NULL);
	}
	return NULL;
}

/* The child: the handlers' order so far, a thread of its own, a lock. */
static int child_main(void)
{
	if (strcmp(order, "21xy") != 0)
		return 2;
	pthread_t t;
	void *r;
	for (int i = 0; i < 20; i++) {
		if (pthread_create(&t, NULL, noop, (void *)(intptr_t)(i + 1)) ||
		    pthread_join(t, &r) || r != (void *)(intptr_t)(i + 1))
			return 3;
	}
	if (pthread_mutex_lock(&lk) || pthread_mutex_unlock(&lk))
		return 4;
	return 0;
}

static void *forker(void *a)
{
	(void)a;
	pid_t p = fork();
	if (p == 0)
		_exit(child_main());
	CHECK(p > 0);
	int st = -1;
	CHECK_EQ(waitpid(p, &st, 0), p);
	CHECK(WIFEXITED(st));
	CHECK_EQ(WEXITSTATUS(st), 0);
	return NULL;
}

int main(void)
{
	CHECK_EQ(sem_init(&parked, 0, 0), 0);
	CHECK_EQ(sem_init(&never, 0, 0), 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;   /* no SA_RESTART: sem_wait fails with EINTR */
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);

	/* pthread_kill to a parked thread: the handler runs there. */
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, sleeper, NULL), 0);
	sem_wait(&parked);
	/* A signal that comes before the thread parks runs its handler there
	 * and does not end the wait to come: send until the wait has ended. */
	while (!atomic_load(&woke)) {
		CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
		usleep(1000);
	}
	CHECK_EQ(pthread_join(t, NULL), 0);
	CHECK_EQ(atomic_load(&wait_rc), -1);
	CHECK_EQ(atomic_load(&wait_errno), EINTR);
	CHECK(pthread_equal(atomic_load(&ran_on), t));
	CHECK_EQ(pthread_kill(t, 0), ESRCH);
	CHECK_EQ(pthread_kill(pthread_self(), -1), EINVAL);

	/* To itself: at once. */
	atomic_store(&usr1_runs, 0);
	CHECK_EQ(pthread_kill(pthread_self(), SIGUSR1), 0);
	CHECK_EQ(atomic_load(&usr1_runs), 1);
	CHECK(pthread_equal(atomic_load(&ran_on), pthread_self()));

	/* Masks per thread, with both calls. */
	for (int how = 0; how < 2; how++) {
		atomic_store(&usr1_runs, 0);
		CHECK_EQ(pthread_create(&t, NULL, blocker, how ? (void *)1 : NULL), 0);
		sem_wait(&parked);
		sigset_t cur;
		CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &cur), 0);
		CHECK(!sigismember(&cur, SIGUSR1));   /* main's own mask */
		CHECK_EQ(pthread_kill(t, SIGUSR1), 0);
		usleep(10000);
		CHECK_EQ(atomic_load(&usr1_runs), 0);   /* pending on t */
		sem_post(&never);
		CHECK_EQ(pthread_join(t, NULL), 0);
		CHECK_EQ(atomic_load(&blocked_runs_before), 0);
		CHECK_EQ(atomic_load(&blocked_runs_after), 1);
	}

	/* fork() from a thread, while others lock, create and join. */
	CHECK_EQ(pthread_atfork(lock_lk, unlock_lk, unlock_lk), 0);   /* its prepare runs last */
	CHECK_EQ(pthread_atfork(prep1, par1, ch1), 0);
	CHECK_EQ(pthread_atfork(prep2, par2, ch2), 0);
	pthread_t c[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&c[i], NULL, churn, NULL), 0);
	/* On weft's green threads: many more alive than kernel threads. */
	pthread_t q[16];
	for (int i = 0; i < 16; i++)
		CHECK_EQ(pthread_create(&q[i], NULL, sleeper, NULL), 0);
	for (int i = 0; i < 16; i++)
		sem_wait(&parked);
	green_check(16);
	for (int i = 0; i < 16; i++)
		sem_post(&never);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(pthread_join(q[i], NULL), 0);
	for (int k = 0; k < 20; k++) {
		memset(order, 0, sizeof order);
		atomic_store(&norder, 0);
		CHECK_EQ(pthread_create(&t, NULL, forker, NULL), 0);
		CHECK_EQ(pthread_join(t, NULL), 0);
		CHECK(strcmp(order, "21ab") == 0);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_join(c[i], NULL), 0);
	return finish("pt_sigfork");
}
