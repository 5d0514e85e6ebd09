/*
 * pt_signal.c — the program's signal handlers under the pthread layer.
 *
 * In any weft program the program's handlers are libweft's business:
 * libweft's sigaction and signal take the place of libc's, install weft's
 * wrapper in the kernel and keep the program's action, so that the tick
 * never switches threads inside a handler (docs/design.md, "The program's
 * signal handlers").  That works only where libweft comes before libc in
 * the loader's search order, which the layer does not give by itself (a
 * library's dependencies are searched after the program's): weft-run
 * preloads libweft too, and linking the layer links libweft right after it.
 * Run both ways (pt_signal through weft-run, pt_signal_linked directly),
 * this program checks the outcome from the outside:
 * which object the program's sigaction and signal are, what the kernel
 * holds, what sigaction reports, and that handlers run while green threads
 * yield and the timer preempts them.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "pt_test.h"

/* The object that defines a symbol, as the program's own calls bind it. */
static const char *object_of(const char *sym)
{
	Dl_info info;
	void *p = dlsym(RTLD_DEFAULT, sym);
	if (!p || !dladdr(p, &info) || !info.dli_fname)
		return "?";
	return info.dli_fname;
}

/* The handler the kernel holds for sig (rt_sigaction's own struct). */
static void *kernel_handler(int sig)
{
	struct { void *handler; unsigned long flags; void *restorer; uint64_t mask; } k;
	if (syscall(SYS_rt_sigaction, sig, NULL, &k, sizeof k.mask))
		return NULL;
	return k.handler;
}

static atomic_int usr1_runs, usr2_runs;
static void on_usr1(int sig) { (void)sig; atomic_fetch_add(&usr1_runs, 1); }
static void on_usr2(int sig) { (void)sig; atomic_fetch_add(&usr2_runs, 1); }

#define SENDERS 8
#define SENDS 200
static atomic_int stop;

/* Sends SIGUSR1 to the process SENDS times, yielding between sends. */
static void *sender(void *a)
{
	for (int i = 0; i < SENDS; i++) {
		CHECK_EQ(kill(getpid(), SIGUSR1), 0);
		sched_yield();
	}
	return a;
}

/* Keeps the workers busy in the program's own code, where ticks land. */
static void *spinner(void *a)
{
	volatile unsigned long x = 0;
	while (!atomic_load(&stop))
		x++;
	return a;
}

int main(void)
{
	/* The program's sigaction and signal are libweft's, the object that
	 * defines weft_stats_get. */
	const char *weft = object_of("weft_stats_get");
	CHECK(strstr(weft, "libweft.so") != NULL);
	if (strcmp(object_of("sigaction"), weft) || strcmp(object_of("signal"), weft))
		fprintf(stderr, "sigaction from %s, signal from %s, weft from %s\n",
		        object_of("sigaction"), object_of("signal"), weft);
	CHECK(strcmp(object_of("sigaction"), weft) == 0);
	CHECK(strcmp(object_of("signal"), weft) == 0);

	/* The kernel holds weft's wrapper; sigaction reports the program's. */
	struct sigaction sa, old;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	CHECK_EQ(sigaction(SIGUSR1, NULL, &old), 0);
	CHECK(old.sa_handler == on_usr1);
	CHECK(kernel_handler(SIGUSR1) != NULL);
	CHECK(kernel_handler(SIGUSR1) != (void *)on_usr1);
	CHECK(signal(SIGUSR2, on_usr2) == SIG_DFL);
	CHECK(signal(SIGUSR2, on_usr2) == on_usr2);
	CHECK(kernel_handler(SIGUSR2) != (void *)on_usr2);

	/* Handlers run while green threads yield and spin under ticks. */
	pthread_t snd[SENDERS], spn[4];
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&spn[i], NULL, spinner, NULL), 0);
	for (int i = 0; i < SENDERS; i++)
		CHECK_EQ(pthread_create(&snd[i], NULL, sender, NULL), 0);
	green_check(SENDERS + 4);
	for (int i = 0; i < SENDERS; i++)
		CHECK_EQ(pthread_join(snd[i], NULL), 0);
	CHECK_EQ(raise(SIGUSR2), 0);
	atomic_store(&stop, 1);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_join(spn[i], NULL), 0);
	/* Signals of one kind pending at once merge: at least one ran, at
	 * most one per send. */
	int n = atomic_load(&usr1_runs);
	CHECK(n >= 1 && n <= SENDERS * SENDS);
	CHECK_EQ(atomic_load(&usr2_runs), 1);

	return finish("pt_signal");
}
