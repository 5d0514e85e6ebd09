/*
 * proc_memory.h — exact memory figures of the test process, for assertions.
 *
 * RssAnon in /proc/self/status and the resident field of /proc/self/statm are
 * read from per-CPU batched counters since Linux 6.2: on a machine with many
 * CPUs they can lag the truth by (CPUs x batch) pages, tens of MiB on a large
 * CI host.  /proc/self/smaps_rollup walks the page tables and is exact.  It is
 * read with open/read into a stack buffer so that taking the measurement does
 * not itself make malloc touch new pages.
 */
#ifndef WEFT_TESTS_PROC_MEMORY_H
#define WEFT_TESTS_PROC_MEMORY_H

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The value in KiB of a line "<field>: N kB" of /proc/self/smaps_rollup,
 * e.g. field "Rss" or "Anonymous". */
static inline long proc_smaps_kb(const char *field)
{
	char buf[4096], key[64];
	ssize_t n, len = 0;
	long kb = -1;
	int fd = open("/proc/self/smaps_rollup", O_RDONLY | O_CLOEXEC);
	ck_assert_msg(fd >= 0, "cannot open /proc/self/smaps_rollup");
	while (len < (ssize_t)sizeof buf - 1 &&
	       (n = read(fd, buf + len, sizeof buf - 1 - (size_t)len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	snprintf(key, sizeof key, "\n%s:", field);
	const char *at = strstr(buf, key);
	ck_assert_msg(at != NULL, "no %s in smaps_rollup", field);
	ck_assert_int_eq(sscanf(at + strlen(key), "%ld", &kb), 1);
	ck_assert_int_ge(kb, 0);
	return kb;
}

#endif
