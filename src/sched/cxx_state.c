/*
 * cxx_state.c — the C++ runtime's per-kernel-thread state follows the green
 * thread.
 *
 * The problem.  The C++ runtime keeps a few words per kernel thread, in its
 * static TLS, that describe what the *running code* is doing:
 *   - the exception globals (__cxa_get_globals: caughtExceptions, the stack
 *     of exceptions being handled, which `throw;` rethrows and
 *     std::current_exception returns; uncaughtExceptions, what
 *     std::uncaught_exceptions counts);
 *   - libstdc++'s std::__once_callable and std::__once_call, which
 *     std::call_once's inline code stores just before it calls pthread_once
 *     and which pthread_once's callback (__once_proxy) reads back.
 * That is all of libstdc++'s TLS (its PT_TLS segment is these 32 bytes on
 * Debian 12's libstdc++.so.6.0.30).  Every green thread on a worker shared
 * them: a thread switched out inside a catch block came back to another
 * thread's exception (measured: 8 threads throwing and catching on one
 * worker, a yield inside the catch, every one of 266,400 catches saw a
 * wrong exception; on two workers std::terminate; ASan reported a
 * use-after-free of the exception object), and a call_once preempted
 * between its stores and pthread_once ran another thread's callable.
 *
 * The approach: save and restore, like errno.  Each worker learns, on its
 * own kernel thread when it starts, where that kernel thread keeps each
 * word (__cxa_get_globals() and dlsym of a TLS symbol both answer for the
 * calling thread).  wf_switch copies the words of the thread it leaves into
 * its TCB and writes them back when the thread is resumed, on whichever
 * worker resumes it; a new thread starts with zeros.  So the words are the
 * green thread's, whatever kernel thread runs it.  A word the runtime does
 * not have (another C++ runtime has no __once_call) points at a spare word
 * of the worker, so the switch copies a fixed number of words without a
 * test per word.  Without a C++ runtime the cost is one predictable branch
 * per switch.
 *
 * Limits (docs/design.md, "C++ and the C library's per-thread state"): the
 * runtime must be loaded when weft starts (a C program that dlopens a C++
 * library later does not get its words carried), and must export
 * __cxa_get_globals (a libstdc++ linked statically into a program is found
 * only when the program exports it, or when weft is linked statically too).
 *
 * Rejected: interposing __cxa_get_globals with a per-green-thread block
 * (libstdc++ calls it through its PLT, but the call_once words are
 * variables, a static libstdc++ calls its own, and every throw and catch
 * would look the current thread up); a thread pointer per green thread
 * (docs/design.md, "Moving threads between workers"); keeping a thread
 * from being switched out inside a catch block (a catch block may block in
 * a weft call, and nothing marks where one ends).
 */
#include <dlfcn.h>
#include "cxx_state.h"

bool wf_cxx_on;

/* The C++ ABI's accessor of the calling kernel thread's exception globals
 * (libstdc++, libc++abi).  Weak: found at link time when the program
 * links both weft and the runtime statically. */
extern void *__cxa_get_globals(void) __attribute__((weak));

static void *(*wf_cxx_globals)(void);

void wf_cxx_init(void)
{
	wf_cxx_globals = (void *(*)(void))dlsym(RTLD_DEFAULT, "__cxa_get_globals");
	if (!wf_cxx_globals)
		wf_cxx_globals = __cxa_get_globals;
	wf_cxx_on = wf_cxx_globals != NULL;
}

/* Where the calling kernel thread keeps TLS symbol `name`, or the spare. */
static uintptr_t *wf_cxx_tls(const char *name, uintptr_t *spare)
{
	uintptr_t *p = dlsym(RTLD_DEFAULT, name);
	return p ? p : spare;
}

void wf_cxx_worker(struct wf_worker *w)
{
	for (int i = 0; i < WF_CXX_WORDS; i++)
		w->cxx_loc[i] = &w->cxx_spare[i];
	if (!wf_cxx_on)
		return;
	/* struct __cxa_eh_globals: caughtExceptions, then uncaughtExceptions
	 * (an unsigned int, padded to a word) — the Itanium C++ ABI layout
	 * outside ARM's EHABI. */
	uintptr_t *eh = wf_cxx_globals();
	w->cxx_loc[0] = &eh[0];
	w->cxx_loc[1] = &eh[1];
	w->cxx_loc[2] = wf_cxx_tls("_ZSt11__once_call", &w->cxx_spare[2]);
	w->cxx_loc[3] = wf_cxx_tls("_ZSt15__once_callable", &w->cxx_spare[3]);
}
