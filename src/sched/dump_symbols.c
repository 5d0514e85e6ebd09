/*
 * dump_symbols.c — naming code addresses for weft_dump's backtraces.
 *
 * dladdr knows only the dynamic symbol table: a program's static functions,
 * and every function of a program not linked with -rdynamic, come out
 * nameless.  So each module a backtrace passes through is mapped read-only
 * from its file once per dump and looked up in its full symbol table
 * (.symtab, else .dynsym); dladdr only says which module and where it is
 * loaded.  A stripped module falls back to dladdr's answer, then to
 * module+offset, which addr2line turns into a line.
 *
 * The cache lives on the dumping thread's stack and dies with the dump: no
 * global state, no lock, nothing kept mapped.
 *
 * Rejected: libbfd or libdw (a dependency for a diagnostic), and keeping
 * tables mapped across dumps (a dlclose'd module would leave stale ones).
 */
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dump_symbols.h"

/* The main program's dladdr name is whatever it was started as, perhaps
 * relative to a directory we have left: open it through /proc instead. */
static int wf_open_module(const char *fname, uintptr_t fbase)
{
	struct link_map *lm = NULL;
	void *prog = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
	if (prog && dlinfo(prog, RTLD_DI_LINKMAP, &lm) == 0 && lm) {
		Dl_info di;
		/* dladdr on the program's own dynamic section names its base. */
		if (lm->l_ld && dladdr(lm->l_ld, &di) && (uintptr_t)di.dli_fbase == fbase) {
			dlclose(prog);
			return open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
		}
	}
	if (prog)
		dlclose(prog);
	return fname && *fname ? open(fname, O_RDONLY | O_CLOEXEC) : -1;
}

/* Map the module's file and find its symbol table. */
static void wf_module_load(struct wf_symmod *m, const char *fname)
{
	struct stat st;
	int fd = wf_open_module(fname, m->fbase);
	if (fd < 0)
		return;
	if (fstat(fd, &st) || st.st_size < (off_t)sizeof(ElfW(Ehdr))) {
		close(fd);
		return;
	}
	void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return;
	m->map = map;
	m->len = (size_t)st.st_size;

	const ElfW(Ehdr) *eh = map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_shoff == 0 || eh->e_shentsize != sizeof(ElfW(Shdr)) ||
	    eh->e_shoff + (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > m->len ||
	    eh->e_phoff + (size_t)eh->e_phnum * sizeof(ElfW(Phdr)) > m->len)
		return;
	/* Load bias: where the first loadable segment's address went. */
	const ElfW(Phdr) *ph = (const void *)((const char *)map + eh->e_phoff);
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD) {
			m->bias = m->fbase - (ph[i].p_vaddr & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1));
			break;
		}
	const ElfW(Shdr) *sh = (const void *)((const char *)map + eh->e_shoff);
	const ElfW(Shdr) *sym = NULL;
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type == SHT_SYMTAB)
			sym = &sh[i];
		else if (sh[i].sh_type == SHT_DYNSYM && !sym)
			sym = &sh[i];
	}
	if (!sym || sym->sh_link >= eh->e_shnum || sym->sh_entsize != sizeof(ElfW(Sym)))
		return;
	const ElfW(Shdr) *str = &sh[sym->sh_link];
	if (sym->sh_offset + sym->sh_size > m->len || str->sh_offset + str->sh_size > m->len)
		return;
	m->syms = (const void *)((const char *)map + sym->sh_offset);
	m->nsyms = sym->sh_size / sizeof(ElfW(Sym));
	m->strs = (const char *)map + str->sh_offset;
	m->strs_len = str->sh_size;
}

static struct wf_symmod *wf_module(struct wf_symcache *c, const Dl_info *di)
{
	uintptr_t fbase = (uintptr_t)di->dli_fbase;
	for (int i = 0; i < c->n; i++)
		if (c->mod[i].fbase == fbase)
			return &c->mod[i];
	if (c->n == WF_SYMCACHE_MODULES)
		return NULL;
	struct wf_symmod *m = &c->mod[c->n++];
	memset(m, 0, sizeof *m);
	m->fbase = fbase;
	wf_module_load(m, di->dli_fname);
	return m;
}

const char *wf_sym_name(struct wf_symcache *c, uintptr_t pc, uintptr_t *off, Dl_info *di)
{
	memset(di, 0, sizeof *di);
	/* A return address points after the call: look up the call itself. */
	uintptr_t at = pc - 1;
	if (!dladdr((void *)at, di))
		return NULL;
	struct wf_symmod *m = wf_module(c, di);
	if (m && m->syms) {
		for (size_t i = 0; i < m->nsyms; i++) {
			const ElfW(Sym) *s = &m->syms[i];
			if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || s->st_shndx == SHN_UNDEF ||
			    s->st_name >= m->strs_len)
				continue;
			uintptr_t lo = m->bias + s->st_value;
			if (at >= lo && at < lo + (s->st_size ? s->st_size : 1)) {
				*off = pc - lo;
				return m->strs + s->st_name;
			}
		}
	}
	if (di->dli_sname) {
		*off = pc - (uintptr_t)di->dli_saddr;
		return di->dli_sname;
	}
	return NULL;
}

void wf_symcache_release(struct wf_symcache *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->mod[i].map)
			munmap(c->mod[i].map, c->mod[i].len);
	c->n = 0;
}
