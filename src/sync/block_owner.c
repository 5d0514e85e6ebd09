/*
 * block_owner.c — where a sync object keeps its owner, for the observers of
 * a parked thread (weft_dump, the gdb script): the owner column of the
 * block-kind list (park.h), as a table of offsets into the objects.
 *
 * Only this layer knows the layouts of its objects: the scheduler shows
 * "held by thread 3" by reading wf_block_owner_at, never a field of
 * weft_mutex_t or weft_rwlock_t.  A table rather than a function, so that
 * the gdb script can read it from a core file, where nothing can be called.
 */
#include <stddef.h>
#include "waitq.h"

#define WF_OWNER(type) offsetof(type, _owner)
#define WF_NO_OWNER 0
#define WF_OWNER_ROW_(name, tag, words, show, held, owner) [WF_BLOCK_##name] = owner,
const uint16_t wf_block_owner_at[WF_BLOCK_COUNT] = { WF_BLOCK_KINDS(WF_OWNER_ROW_) };
