# weft-gdb.py — gdb commands for programs that use weft green threads.
#
# Load it in gdb (or from ~/.gdbinit):
#
#     (gdb) source /usr/local/share/weft/weft-gdb.py
#
# Commands (`help weft` lists them, `help weft bt` explains one):
#
#     weft threads      every worker and every live green thread: id, name,
#                       state, worker, and what a blocked thread waits for
#     weft bt ID        backtrace of a green thread that is not running
#     weft bt all       the same for every green thread
#
# gdb knows only the kernel threads (weft's workers); a green thread that is
# parked or queued has no kernel thread, only a saved context on its own
# stack.  `weft bt` shows it with gdb's own unwinder by loading the saved
# registers into the selected kernel thread for the length of one `bt`, and
# restores them exactly afterwards.  Where registers cannot be written (a
# core file), it walks the frame-pointer chain instead (weft and programs
# built with its CMake setup keep frame pointers).
#
# Everything is read through the program's debug info: the runtime `wf_rt`
# and the TCB table `wf_chunks`/`wf_slots_used` (src/sched/handle.c), the
# TCB layout `struct wf_thread` and the enum wf_state
# (src/sched/sched_internal.h), what a parked thread waits for: the
# tables built from the block-kind list of src/sched/park.h, `wf_block_kinds`
# (words) and `wf_block_owner_at` (where an object keeps its owner), and the
# layout of a parked thread's saved context, `wf_ctx_frame_layout`
# (src/context/context.c, built from src/context/frame.h).  So this script
# holds no copy of the list and no layout of its own, and follows whichever
# ISA the program was built for (x86-64, AArch64).  The program, or libweft,
# must be built with -g.  The defaults below are used only for enumerators
# the debug info left out.
#
# The wording of the states follows weft_dump (src/sched/dump.c).
#
# Core files: a core the kernel dumped has the green threads' stacks.  One
# written by gdb's `gcore` may not: on Linux 6.13 and later weft's stack
# slabs carry guard markers (MADV_GUARD_INSTALL) that gdb cannot read
# across, and it then leaves whole stretches of the slab out of the core.

import struct
import time

import gdb

NOT_FOUND = ("weft runtime not found "
             "(is the program linked with weft and built with -g?)")

# handle.c: chunks of 1 << WF_CHUNK_SHIFT TCBs.  A macro, so it is in the
# debug info only with -g3; this default must follow handle.c.
_CHUNK_SHIFT_DEFAULT = 10

# Word size of the saved context (both ISAs weft supports are LP64).
_WORD = 8

def _enum_value(name, default):
    """Value of an enumerator from the debug info, or `default`."""
    try:
        return int(gdb.parse_and_eval(name))
    except (gdb.error, RuntimeError):
        return default


def _lookup_var(name):
    """The gdb.Value of a global or file-static variable, or None."""
    finders = (lambda: gdb.lookup_global_symbol(name),
               lambda: gdb.lookup_static_symbol(name),
               lambda: gdb.lookup_symbol(name)[0])
    for find in finders:
        try:
            sym = find()
        except (gdb.error, RuntimeError, AttributeError):
            continue
        # A variable defined in one file and declared in another may be
        # found first through the declaration (LOC_UNRESOLVED): its value
        # is still the variable's.
        if sym is not None and (sym.is_variable or
                                sym.addr_class == gdb.SYMBOL_LOC_UNRESOLVED):
            try:
                return sym.value()
            except (gdb.error, RuntimeError):
                continue
    return None


def _secs(ns):
    return "%d.%03d s" % (ns // 1000000000, ns // 1000000 % 1000)


def _target_type():
    """'native', 'core', 'remote'... of the selected inferior, or None."""
    try:
        conn = gdb.selected_inferior().connection
        return conn.type if conn is not None else None
    except (AttributeError, gdb.error):
        return None


class _FrameLayout(object):
    """The saved context of a parked thread: wf_ctx_frame_layout
    (src/context/context.c) read through the debug info.  A parked thread's
    sp points at a frame of `size` bytes; each register of `regs` is the
    word at sp + its offset, the pc the word at sp + pc_offset, and the
    thread's own stack pointer is sp + size once it resumes."""

    def __init__(self):
        v = _lookup_var("wf_ctx_frame_layout")
        if v is None:
            raise gdb.GdbError(NOT_FOUND)
        try:
            self.size = int(v["size"])
            self.pc_offset = int(v["pc_offset"])
            self.fp_offset = int(v["fp_offset"])
            self.pc_name = v["pc_name"].string()
            self.sp_name = v["sp_name"].string()
            regs = v["regs"]
            self.regs = [(regs[i]["name"].string(), int(regs[i]["offset"]))
                         for i in range(int(v["nregs"]))]
        except (gdb.error, RuntimeError) as e:
            raise gdb.GdbError("weft: wf_ctx_frame_layout unreadable: %s" % e)
        if self.size % _WORD or self.size <= self.pc_offset:
            raise gdb.GdbError("weft: wf_ctx_frame_layout is inconsistent "
                               "(size %d)" % self.size)

    def words(self, sp):
        return _read_words(sp, self.size // _WORD)

    def pc_fp(self, words):
        """Where the context resumes and its frame pointer."""
        return (words[self.pc_offset // _WORD],
                words[self.fp_offset // _WORD])

    def write_order(self):
        """Registers `weft bt` loads, in the order they are written: the
        stack pointer first, the pc last, so that a fault halfway leaves
        the pc alone."""
        return ([self.sp_name] + [name for name, _ in self.regs] +
                [self.pc_name])

    def registers(self, sp, words):
        """Register name -> value in the parked context."""
        new = dict((name, words[off // _WORD]) for name, off in self.regs)
        new[self.sp_name] = sp + self.size
        new[self.pc_name] = words[self.pc_offset // _WORD]
        return new


class _Runtime(object):
    """The weft runtime of the selected inferior, looked up afresh for each
    command (the program may have been re-run or another one loaded)."""

    def __init__(self):
        self.rt = _lookup_var("wf_rt")
        self.chunks = _lookup_var("wf_chunks")
        self.slots_used = _lookup_var("wf_slots_used")
        if self.rt is None or self.chunks is None or self.slots_used is None:
            raise gdb.GdbError(NOT_FOUND)
        self.frame = _FrameLayout()
        if gdb.selected_inferior().pid == 0:
            raise gdb.GdbError("The program is not being run.")
        try:
            state = int(self.rt["state"])
        except gdb.MemoryError:
            raise gdb.GdbError("weft runtime unreadable (wf_rt at %s)"
                               % self.rt.address)
        if state != _enum_value("WF_RT_READY", 2):   # sched_internal.h
            raise gdb.GdbError("weft runtime not initialized yet "
                               "(no weft call made, or it failed)")
        self.shift = _enum_value("WF_CHUNK_SHIFT", _CHUNK_SHIFT_DEFAULT)
        self.FREE = _enum_value("WF_FREE", 0)
        self.READY = _enum_value("WF_READY", 1)
        self.RUNNING = _enum_value("WF_RUNNING", 2)
        self.BLOCKED = _enum_value("WF_BLOCKED", 3)
        self.DONE = _enum_value("WF_DONE", 4)
        self.KIND_MAIN = _enum_value("WF_KIND_MAIN", 1)
        self.KIND_IDLE = _enum_value("WF_KIND_IDLE", 2)
        self.KIND_FOREIGN = _enum_value("WF_KIND_FOREIGN", 3)
        self.block_kinds = _lookup_var("wf_block_kinds")
        self.owner_at = _lookup_var("wf_block_owner_at")
        if self.block_kinds is None:
            raise gdb.GdbError(NOT_FOUND)
        self.nworkers = int(self.rt["nworkers"])
        self.workers = self.rt["workers"]
        # In a child of fork(), the slots of threads left behind that were
        # not reclaimed yet (handle.c, wf_tcb_forked_child).
        dead_hi = _lookup_var("wf_tcb_dead_hi")
        self.dead_hi = int(dead_hi) if dead_hi is not None else 0
        self.dead_lo, self.dead_keep = 0, 0
        if self.dead_hi:
            self.dead_lo = int(_lookup_var("wf_tcb_dead_lo"))
            self.dead_keep = int(_lookup_var("wf_tcb_dead_keep"))
        # Kernel tid -> gdb thread number.
        self.gdb_threads = {}
        for th in gdb.selected_inferior().threads():
            self.gdb_threads[th.ptid[1]] = th.num
        # Clocks: weft's are CLOCK_MONOTONIC (and its coarse variant, same
        # origin); comparable to ours only for a live process on this host.
        self.now = None
        if _target_type() == "native":
            self.now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)

    # --- TCBs -------------------------------------------------------------

    def slots(self):
        return int(self.slots_used)

    def tcb(self, slot):
        """The TCB (a gdb.Value of struct wf_thread) of a slot, or None."""
        if slot < 0 or slot >= self.slots():
            return None
        chunk = self.chunks[slot >> self.shift]
        if int(chunk) == 0:
            return None
        t = chunk[slot & ((1 << self.shift) - 1)]
        t.fetch_lazy()
        return t

    def live(self, t):
        """Is t a green thread a user would see (not free, not an idle
        context of a worker, not the identity of a foreign kernel thread,
        not left behind by fork())?"""
        if t is None:
            return False
        index = int(t["index"])
        if (self.dead_lo <= index < self.dead_hi
                and int(t.address) != self.dead_keep):
            return False
        return (int(t["state"]) != self.FREE
                and int(t["kind"]) not in (self.KIND_IDLE, self.KIND_FOREIGN))

    def threads(self):
        for slot in range(self.slots()):
            try:
                t = self.tcb(slot)
            except gdb.MemoryError:
                continue
            if self.live(t):
                yield t

    @staticmethod
    def tid_of(t):
        return int(t["index"]) + 1

    @staticmethod
    def name_of(t):
        try:
            return t["name"].string(errors="replace")
        except (gdb.error, UnicodeError):
            return ""

    def live_count(self):
        """Threads alive besides main, as wf_live_count (src/sched/thread.c)
        sums them: each worker's created minus finished statistics, plus the
        creates from kernel threads that are not workers."""
        stats = gdb.lookup_type("weft_stats_t").strip_typedefs()
        idx = {f.name: i for i, f in enumerate(stats.fields())}
        n = int(self.rt["created_foreign"])
        for i in range(self.nworkers):
            v = self.workers[i]["stats"]["v"]
            n += int(v[idx["created"]]) - int(v[idx["finished"]])
        return max(n, 0)

    def worker_of(self, t):
        w = t["worker"]
        return int(w["index"]) if int(w) != 0 else -1

    def worker_where(self, index):
        """'kernel tid T, gdb thread G' of worker `index`."""
        if index < 0 or index >= self.nworkers:
            return "no worker"
        tid = int(self.workers[index]["tid"])
        text = "kernel tid %d" % tid
        if tid in self.gdb_threads:
            text += ", gdb thread %d" % self.gdb_threads[tid]
        return text

    # --- words --------------------------------------------------------------

    def block_kind(self, t):
        """The row of wf_block_kinds (src/sched/park.h) describing what t
        waits for."""
        kind = int(t["block_kind"])
        if not 0 <= kind <= self.block_kinds.type.range()[1]:
            kind = 0   # WF_BLOCK_NONE, as weft_dump does
        return kind, self.block_kinds[kind]

    def holder(self, t, kind, row):
        """weft_t of the owner of the object t waits for (a mutex, an
        rwlock's writer); 0 if none or unreadable."""
        obj = int(t["block_obj"])
        if not obj or int(row["held"]) == 0 or self.owner_at is None:
            return 0
        try:
            at = obj + int(self.owner_at[kind])
            ptr = gdb.Value(at).cast(gdb.lookup_type("uintptr_t").pointer())
            return int(ptr.dereference())
        except (gdb.error, RuntimeError):
            return 0

    def blocked_words(self, t):
        kind, row = self.block_kind(t)
        obj = int(t["block_obj"])
        text = "blocked, " + row["words"].string()
        show = str(row["show"])
        if show == "WF_SHOW_THREAD" and obj:
            try:
                joined = t["block_obj"].cast(t.type.pointer()).dereference()
                text += " thread %d" % self.tid_of(joined)
            except (gdb.error, RuntimeError):
                text += " 0x%x" % obj
        elif show == "WF_SHOW_ADDRESS" and obj:
            text += " 0x%x" % obj
        elif show == "WF_SHOW_NUMBER":
            text += " %d" % obj
        holder = self.holder(t, kind, row)
        if holder:
            text += " (%s by thread %d)" % (row["held"].string(),
                                            holder & 0xffffffff)
        deadline = int(t["deadline"])
        if deadline and self.now is not None:
            if deadline > self.now:
                text += ", wakes in " + _secs(deadline - self.now)
            else:
                text += ", deadline passed %s ago" % _secs(self.now - deadline)
        elif deadline:
            text += ", deadline %s (CLOCK_MONOTONIC)" % _secs(deadline)
        since = int(t["block_since"])
        if since and self.now is not None and self.now >= since:
            text += ", for " + _secs(self.now - since)
        return text

    def describe(self, t):
        """One line, as weft_dump words it."""
        text = "thread %d" % self.tid_of(t)
        name = self.name_of(t)
        if name:
            text += ' "%s"' % name
        if int(t["kind"]) == self.KIND_MAIN:
            text += " [main]"
        text += ": "
        state = int(t["state"])
        w = self.worker_of(t)
        if state == self.RUNNING:
            text += "running on worker %d (%s)" % (w, self.worker_where(w))
        elif state == self.READY:
            text += "ready, queued on worker %d" % w
            if int(t["in_signal"]):
                text += " (preempted)"
        elif state == self.BLOCKED:
            text += self.blocked_words(t) + ", last on worker %d" % w
        elif state == self.DONE:
            text += "finished, not yet joined"
        else:
            text += "state %d" % state
        return text

    def describe_worker(self, i):
        w = self.workers[i]
        cur = w["current"]
        text = "worker %d (%s): " % (i, self.worker_where(i))
        if int(cur) == 0 or int(cur) == int(w["idle"]):
            text += ("idle, asleep" if int(w["sleeping"])
                     else "idle, looking for work")
        else:
            text += "running thread %d" % self.tid_of(cur.dereference())
        try:
            text += "; %d queued" % int(w["rq_len"])
        except gdb.error:
            pass
        return text

    def saved_context(self, t):
        """Problem with t's saved context as a string, or None if it has a
        usable one."""
        state = int(t["state"])
        if state == self.RUNNING:
            w = self.worker_of(t)
            where = self.worker_where(w)
            if ", gdb thread " in where:
                how = "`thread %s` then `bt`" % where.rsplit(" ", 1)[1]
            else:
                how = "find kernel tid %d in `info threads`" % (
                    int(self.workers[w]["tid"]) if 0 <= w < self.nworkers
                    else -1)
            return ("running: its stack is that of worker %d's kernel "
                    "thread: %s" % (w, how))
        if state == self.DONE:
            return "finished, not yet joined: no stack left to show"
        if state not in (self.READY, self.BLOCKED):
            return "state %d: no saved context" % state
        if int(t["on_cpu"]) != 0:
            return "still switching away: no saved context yet"
        if int(t["sp"]) == 0:
            return "no saved context"
        return None


# --- backtraces --------------------------------------------------------------

def _read_words(addr, n):
    mem = gdb.selected_inferior().read_memory(addr, _WORD * n)
    return struct.unpack("<%dQ" % n, bytes(mem))


def _select_level(level):
    frame = gdb.newest_frame()
    for _ in range(level):
        older = frame.older()
        if older is None:
            break
        frame = older
    frame.select()


def _set_reg(name, value):
    gdb.execute("set $%s = 0x%x" % (name, value), to_string=True)


def _bt_registers(layout, sp, bt_args):
    """Backtrace of the context saved at sp by loading it into the selected
    kernel thread, restoring that thread's registers afterwards.  Returns
    None when the registers cannot be written (nothing was changed then)."""
    thread = gdb.selected_thread()
    if thread is None:
        raise gdb.GdbError("No thread selected.")
    if thread.is_running():
        raise gdb.GdbError("The selected thread is running: stop it or "
                           "select a stopped one (non-stop mode).")
    new = layout.registers(sp, layout.words(sp))
    swap = layout.write_order()

    try:
        level = gdb.selected_frame().level()
    except gdb.error:
        level = 0
    gdb.newest_frame().select()
    frame = gdb.newest_frame()
    saved = dict((reg, int(frame.read_register(reg)) & 0xffffffffffffffff)
                 for reg in swap)
    # Writing the pc makes gdb cancel a system call restart (orig_rax = -1)
    # on x86-64 Linux: keep it too, and put it back last.
    try:
        saved_orig_rax = int(frame.read_register("orig_rax"))
    except (ValueError, gdb.error):
        saved_orig_rax = None

    # The first write tells whether the target takes writes at all (a core
    # file does not); a write of an unchanged value would not, gdb skips it.
    try:
        _set_reg(swap[0], new[swap[0]])
    except gdb.error:
        _select_level(level)
        return None

    try:
        for reg in swap[1:]:
            _set_reg(reg, new[reg])
        return gdb.execute(("bt " + bt_args).strip(), to_string=True)
    finally:
        gdb.newest_frame().select()
        for reg in swap:
            _set_reg(reg, saved[reg])
        if saved_orig_rax is not None:
            _set_reg("orig_rax", saved_orig_rax & 0xffffffffffffffff)
        frame = gdb.newest_frame()
        wrong = [reg for reg in swap
                 if int(frame.read_register(reg)) & 0xffffffffffffffff
                 != saved[reg]]
        if wrong:
            gdb.write("weft: WARNING: could not restore %s of the selected "
                      "thread; they were: %s\n" % (
                          ", ".join(wrong),
                          ", ".join("%s=0x%x" % (r, saved[r])
                                    for r in swap)),
                      gdb.STDERR)
        _select_level(level)


def _where(pc):
    """Function and place of a return address (looked up at pc - 1, the
    call instruction)."""
    text = gdb.execute("info symbol 0x%x" % (pc - 1), to_string=True).strip()
    if text.startswith("No symbol"):
        text = "??"
    else:
        # "f + 12 in section .text": drop the section, keep the symbol.
        text = text.split(" in section ")[0]
    sal = gdb.find_pc_line(pc - 1)
    if sal.symtab is not None and sal.line:
        text += " at %s:%d" % (sal.symtab.filename, sal.line)
    return text


def _bt_frame_pointers(layout, sp, limit=64):
    """Frame-pointer walk of a saved context, as weft_dump does it."""
    lines = []
    try:
        words = layout.words(sp)
    except gdb.MemoryError:
        return "(saved context at 0x%x unreadable)\n" % sp
    pc, fp = layout.pc_fp(words)
    if not pc:
        return ("(saved context at 0x%x has no return address: is the "
                "stack in this core file?)\n" % sp)
    n = 0
    while pc and n < limit:
        lines.append("#%-2d 0x%016x in %s" % (n, pc, _where(pc)))
        n += 1
        if not fp or fp & 7 or fp < sp:
            break
        try:
            # A frame record (src/context/context.h): the caller's frame
            # pointer, then the return address, on both ISAs.
            link_fp, link_pc = _read_words(fp, 2)
        except gdb.MemoryError:
            break
        if link_fp and link_fp <= fp:
            break   # frame pointers grow towards the stack's base
        pc, fp = link_pc, link_fp
    return "\n".join(lines) + "\n"


def _backtrace(rt, t, bt_args, frame_pointers):
    gdb.write(rt.describe(t) + "\n")
    problem = rt.saved_context(t)
    if problem is not None:
        gdb.write("  (%s)\n" % problem)
        return
    sp = int(t["sp"])
    out = None
    if _target_type() == "core":
        frame_pointers = True
        gdb.write("  (core file: registers cannot be loaded, "
                  "frame-pointer walk)\n")
    if not frame_pointers:
        out = _bt_registers(rt.frame, sp, bt_args)
        if out is None:
            gdb.write("  (registers not writable here, e.g. a core file: "
                      "frame-pointer walk)\n")
    if out is None:
        out = _bt_frame_pointers(rt.frame, sp)
    gdb.write(out)


# --- commands ------------------------------------------------------------------

class WeftCommand(gdb.Command):
    """Commands for programs using weft green threads.

weft threads      -- list workers and green threads
weft bt ID|all    -- backtrace of a green thread that is not running

Green threads are numbered as weft numbers them: the id is the low 32 bits
of the thread's weft_t handle (weft_dump and `weft threads` show it)."""

    def __init__(self):
        super(WeftCommand, self).__init__("weft", gdb.COMMAND_STACK,
                                          gdb.COMPLETE_NONE, True)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("Undefined weft command: \"%s\".  "
                               "Try \"help weft\"." % arg.strip())
        gdb.execute("help weft")


class WeftThreadsCommand(gdb.Command):
    """List weft's workers and green threads.

Usage: weft threads

One line per worker: its kernel thread (and gdb thread number) and the
green thread it runs.  Then one line per live green thread: id, name,
state (running, ready, blocked, finished), the worker it is on or last ran
on, and for a blocked thread what it waits for: the thread it joins, the
mutex, cond, semaphore, rwlock, barrier or once by address (with the
holder's id for a mutex or write-locked rwlock), the time left of a sleep
or timed wait and how long it has been blocked (live processes only)."""

    def __init__(self):
        super(WeftThreadsCommand, self).__init__("weft threads",
                                                 gdb.COMMAND_STACK,
                                                 gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        if arg.strip():
            raise gdb.GdbError("weft threads takes no arguments.")
        rt = _Runtime()
        gdb.write("weft: %d workers, %d threads alive besides main\n"
                  % (rt.nworkers, rt.live_count()))
        for i in range(rt.nworkers):
            gdb.write(rt.describe_worker(i) + "\n")
        shown = 0
        for t in rt.threads():
            gdb.write(rt.describe(t) + "\n")
            shown += 1
        gdb.write("weft: %d threads\n" % shown)


class WeftBtCommand(gdb.Command):
    """Backtrace of a weft green thread that is not running.

Usage: weft bt [-fp] ID [BT-ARGS...]
       weft bt [-fp] all [BT-ARGS...]

ID is a green thread id as `weft threads` shows it, or any expression
whose value is one or is a weft_t handle (e.g. a variable holding the
handle: its low 32 bits are the id).  `all` shows every green thread.

For a thread that is ready or blocked, the registers it saved when it was
switched out are loaded into the selected kernel thread, gdb's `bt` runs
(with BT-ARGS, e.g. `full` or a frame count), and the kernel thread's
registers are put back exactly as they were.  A running green thread's
stack is that of its worker's kernel thread: select it with `thread N`
(`weft threads` gives N) and use `bt`.

Where registers cannot be written (a core file), or with -fp, the saved
frame-pointer chain is walked instead, naming each return address as
`info symbol` does."""

    def __init__(self):
        super(WeftBtCommand, self).__init__("weft bt", gdb.COMMAND_STACK,
                                            gdb.COMPLETE_EXPRESSION)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        frame_pointers = False
        if argv and argv[0] == "-fp":
            frame_pointers = True
            argv = argv[1:]
        if not argv:
            raise gdb.GdbError("Usage: weft bt [-fp] ID|all [BT-ARGS...]")
        which, bt_args = argv[0], " ".join(argv[1:])
        rt = _Runtime()
        if which == "all":
            first = True
            for t in rt.threads():
                if not first:
                    gdb.write("\n")
                first = False
                _backtrace(rt, t, bt_args, frame_pointers)
            return
        try:
            tid = int(gdb.parse_and_eval(which)) & 0xffffffff
        except (gdb.error, RuntimeError) as e:
            raise gdb.GdbError("weft bt: bad thread id \"%s\": %s"
                               % (which, e))
        t = rt.tcb(tid - 1) if tid else None
        if not rt.live(t):
            raise gdb.GdbError("weft bt: no green thread %d "
                               "(see `weft threads`)" % tid)
        _backtrace(rt, t, bt_args, frame_pointers)


WeftCommand()
WeftThreadsCommand()
WeftBtCommand()
