/*
 * ie_tls_module.cc — a library with initial-exec TLS, for test_cxx.cc to
 * dlopen after weft has started (built with -ftls-model=initial-exec, so
 * its TLS lives in the static TLS block of every kernel thread and ld.so
 * marks it STATIC_TLS).
 */
#include <cstring>

static __thread long ie_number = 0x5745465421L;
static __thread char ie_text[32] = "initial-exec TLS";
static int ie_ctor_saw;

/* 0 when this kernel thread's copy holds the initial values. */
static long ie_check()
{
	return (ie_number != 0x5745465421L) + (std::strcmp(ie_text, "initial-exec TLS") != 0);
}

/* Runs inside dlopen, on the kernel thread that called it. */
__attribute__((constructor)) static void ie_ctor()
{
	ie_ctor_saw = ie_check() == 0;
}

extern "C" __attribute__((visibility("default"))) long ie_read(void)
{
	return ie_check();
}

extern "C" __attribute__((visibility("default"))) int ie_ctor_ok(void)
{
	return ie_ctor_saw;
}
