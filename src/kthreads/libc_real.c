/*
 * libc_real.c — find libc's definition of a pthread function past the
 * pthread layer (libc_real.h says why).
 *
 * The layer marks itself with the exported symbol weft_pthread_layer_.
 * When it is absent the ordinary binding is right and is returned as is.
 * When it is present, the loaded objects are walked in the loader's own
 * search order (its link map: the program, preloaded objects, then the
 * rest in load order), skipping the program and the layer, and the first
 * object that itself defines the name wins: a sanitizer runtime loaded
 * ahead of libc keeps intercepting weft's calls, as without the layer.
 * "Itself": dlsym on an object's handle also searches that object's own
 * dependencies, so a hit counts only if dladdr places it in that object.
 */
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include "libc_real.h"

static void *wf_own_sym(struct link_map *l, const char *name)
{
	if (!l->l_name || !l->l_name[0])
		return NULL;
	void *h = dlopen(l->l_name, RTLD_LAZY | RTLD_NOLOAD);
	if (!h)
		return NULL;
	void *p = dlsym(h, name);
	dlclose(h);
	Dl_info info;
	struct link_map *owner = NULL;
	if (!p || !dladdr1(p, &info, (void **)&owner, RTLD_DL_LINKMAP) || owner != l)
		return NULL;
	return p;
}

void *wf_libc_sym(const char *name, void *dflt)
{
	void *marker = dlsym(RTLD_DEFAULT, "weft_pthread_layer_");
	if (!marker)
		return dflt;
	Dl_info info;
	struct link_map *layer = NULL, *l = NULL;
	if (!dladdr1(marker, &info, (void **)&layer, RTLD_DL_LINKMAP))
		return dflt;
	void *self = dlopen(NULL, RTLD_LAZY | RTLD_NOLOAD);
	if (!self || dlinfo(self, RTLD_DI_LINKMAP, &l) != 0)
		return dflt;
	for (l = l ? l->l_next : NULL; l; l = l->l_next) {   /* past the program */
		if (l == layer)
			continue;
		void *p = wf_own_sym(l, name);
		if (p)
			return p;
	}
	return dflt;
}
