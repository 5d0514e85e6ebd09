/*
 * valgrind_stack.h — telling valgrind which memory is a stack.
 *
 * Memcheck follows the stack pointer: when it moves down it marks the
 * bytes it passed over as undefined, when it moves up it marks them
 * inaccessible, unless the move is larger than --max-stackframe (2 MB by
 * default), which it takes for a switch to another stack.  weft's stacks
 * lie next to each other in slabs (stack.c), so a switch from one green
 * thread to another looks like a frame push or pop: memcheck marked the
 * other thread's saved registers undefined, warned at wf_ctx_switch's
 * ldmxcsr, and then crashed there.  A stack registered with
 * VALGRIND_STACK_REGISTER is known as one: a move of the stack pointer
 * into another registered stack is a switch, and nothing is marked.  So
 * every stack a context runs on is registered for as long as it does
 * (docs/design.md, "The context switch", "Valgrind").
 *
 * The requests are a few register rotations that do nothing when the
 * program does not run under valgrind.  Without valgrind's header (the
 * build checks for it, CMakeLists.txt) they compile to nothing at all.
 */
#ifndef WF_VALGRIND_STACK_H
#define WF_VALGRIND_STACK_H

#include <stddef.h>

#ifdef WF_VALGRIND
#include <valgrind/valgrind.h>
#include <valgrind/memcheck.h>

/* Register [lo, hi) as a stack; the handle for wf_vg_stack_deregister.
 * 0 never names a stack (valgrind's ids start at 0: the handle is id + 1). */
static inline unsigned wf_vg_stack_register(const void *lo, const void *hi)
{
	return (unsigned)VALGRIND_STACK_REGISTER(lo, (const char *)hi - 1) + 1;
}

static inline void wf_vg_stack_deregister(unsigned handle)
{
	if (handle)
		VALGRIND_STACK_DEREGISTER(handle - 1);
}

/* Memory weft wrote but memcheck cannot know it did (see the callers). */
static inline void wf_vg_defined(const void *p, size_t n)
{
	(void)VALGRIND_MAKE_MEM_DEFINED(p, n);
}

/* Running under valgrind? */
static inline int wf_vg_running(void) { return RUNNING_ON_VALGRIND != 0; }

/* Memcheck's validity bits of the n bytes at p (a set bit: undefined)
 * into bits; false when they cannot be had (not addressable, or another
 * tool than memcheck). */
static inline int wf_vg_vbits(const void *p, void *bits, size_t n)
{
	return VALGRIND_GET_VBITS(p, bits, n) == 1;
}
#else
static inline unsigned wf_vg_stack_register(const void *lo, const void *hi)
{
	(void)lo; (void)hi;
	return 0;
}
static inline void wf_vg_stack_deregister(unsigned handle) { (void)handle; }
static inline void wf_vg_defined(const void *p, size_t n) { (void)p; (void)n; }
static inline int wf_vg_running(void) { return 0; }
static inline int wf_vg_vbits(const void *p, void *bits, size_t n)
{
	(void)p; (void)bits; (void)n;
	return 0;
}
#endif

#endif
