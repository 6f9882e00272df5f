// The scheduler behind cuda_cpu.h: fibers, barriers, warp collectives, launches.
// Included once per kernel library (one translation unit: cuda_cpu.h + the code string).
#ifndef CUDACPU_RUNTIME_H
#define CUDACPU_RUNTIME_H

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace cudacpu {

// ---- kernel table: the host side appends one entry per extern "C" __global__ function ------
struct Entry {
    const char* name;
    void* fn;
    void (*invoke)(void* fn, void** args);
    const char* signature;  // one letter per parameter: p pointer, b/h/i/q 1/2/4/8-byte integer, f, d
    int max_threads;        // __launch_bounds__, 0 if none
};

template <typename T> constexpr char type_code() {
    return std::is_pointer<T>::value ? 'p'
         : std::is_floating_point<T>::value ? (sizeof(T) == 4 ? 'f' : sizeof(T) == 8 ? 'd' : '?')
         : std::is_integral<T>::value ? (sizeof(T) == 1 ? 'b' : sizeof(T) == 2 ? 'h' : sizeof(T) == 4 ? 'i' : 'q')
         : '?';
}
template <typename... A> struct Signature { static constexpr char value[sizeof...(A) + 1] = {type_code<A>()..., '\0'}; };

template <typename... A, size_t... I>
inline void call_with(void (*f)(A...), void** args, std::index_sequence<I...>) {
    (void)args;
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(args[I])...);
}
template <typename... A> void invoke(void* fn, void** args) {
    call_with(reinterpret_cast<void (*)(A...)>(fn), args, std::index_sequence_for<A...>{});
}
template <typename... A> Entry entry(const char* name, void (*f)(A...), int max_threads) {
    return Entry{name, reinterpret_cast<void*>(f), &invoke<A...>, Signature<A...>::value, max_threads};
}

// ---- context switch ----------------------------------------------------------------------
#if defined(__x86_64__) && !defined(CUDACPU_UCONTEXT)  // -DCUDACPU_UCONTEXT: the portable fallback
// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack,
// stores the stack pointer in *save, and resumes the context whose stack pointer is load.
extern "C" void cudacpu_switch_context(void** save, void* load);
asm(".text\n"
    ".p2align 4\n"
    ".globl cudacpu_switch_context\n"
    ".hidden cudacpu_switch_context\n"
    ".type cudacpu_switch_context,@function\n"
    "cudacpu_switch_context:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    ".size cudacpu_switch_context, .-cudacpu_switch_context\n");
struct Context { void* sp; };
inline void switch_context(Context* save, Context* load) { cudacpu_switch_context(&save->sp, load->sp); }
inline void make_context(Context* c, char* stack, size_t size, void (*fn)()) {
    void** sp = reinterpret_cast<void**>(stack + size);  // 16-byte aligned (mmap'd, page-sized)
    *--sp = nullptr;                            // the entry function's return address: none
    *--sp = reinterpret_cast<void*>(fn);        // where the first switch "returns" to
    for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp rbx r12 r13 r14 r15
    unsigned int mxcsr;
    unsigned short fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    unsigned long long word = mxcsr | ((unsigned long long)fpucw << 32);
    *--sp = reinterpret_cast<void*>(word);
    c->sp = sp;
}
#else
}  // namespace cudacpu
#include <ucontext.h>
namespace cudacpu {
struct Context { ucontext_t uc; };
inline void switch_context(Context* save, Context* load) { swapcontext(&save->uc, &load->uc); }
inline void make_context(Context* c, char* stack, size_t size, void (*fn)()) {
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, fn, 0);
}
#endif

// ---- state -------------------------------------------------------------------------------
enum FiberState : int { RUNNABLE, AT_BARRIER, AT_WARP, DONE, ABANDONED };

struct Fiber {
    Context ctx;
    char* stack;
    size_t stack_size;
    void* fake_stack;
    bool dirty;  // abandoned mid-run: its stack shadow must be cleared before reuse
    uint3 idx;
    int linear, warp, lane;
    FiberState state;
    const char* what;  // where it waits
    const char* file;
    int line;
    Collective kind;
    unsigned mask;
    int arg, width;
    unsigned long long value, result;
};

struct SharedVar { unsigned long long offset, size; };

struct Runtime {
    Fiber* fibers = nullptr;
    int capacity = 0;
    int n = 0;  // threads per block
    int done = 0, at_barrier = 0;
    int warp_waiting[32] = {0}, warp_done[32] = {0};  // per warp: lanes at a collective, exited
    const Entry* entry = nullptr;
    void** args = nullptr;
    Context sched;
    const void* sched_bottom = nullptr;
    size_t sched_size = 0;
    void* sched_fake = nullptr;
    Fiber* current = nullptr;
    bool failed = false;
    char error[16384];
    unsigned char poison = 0xff;
    unsigned char* dynamic_shared = nullptr;
    unsigned long long dynamic_capacity = 0, dynamic_bytes = 0;
    const SharedVar* statics = nullptr;
    int num_statics = 0;
    const unsigned char* anchor = nullptr;
};
static Runtime R;
static const size_t kStackSize = 256 * 1024;
static const size_t kGuard = 4096;

inline void asan_start(void** fake, const void* bottom, size_t size) {
#if defined(CUDACPU_ASAN) && !defined(CUDACPU_NO_FIBER_ANNOTATIONS)
    __sanitizer_start_switch_fiber(fake, bottom, size);
#else
    (void)fake; (void)bottom; (void)size;
#endif
}
inline void asan_finish(void* fake, const void** bottom, size_t* size) {
#if defined(CUDACPU_ASAN) && !defined(CUDACPU_NO_FIBER_ANNOTATIONS)
    __sanitizer_finish_switch_fiber(fake, bottom, size);
#else
    (void)fake; (void)bottom; (void)size;
#endif
}

// ---- messages ----------------------------------------------------------------------------
static size_t error_len = 0;
__attribute__((format(printf, 1, 2))) static void append(const char* fmt, ...) {
    if (error_len >= sizeof(R.error) - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(R.error + error_len, sizeof(R.error) - error_len, fmt, ap);
    va_end(ap);
    if (k > 0) error_len += (size_t)k;
    if (error_len > sizeof(R.error) - 1) error_len = sizeof(R.error) - 1;
}
static void begin_error() {
    error_len = 0;
    R.error[0] = '\0';
    append("%s: block (%u,%u,%u): ", R.entry->name, blockIdx.x, blockIdx.y, blockIdx.z);
}
static void append_lanes(unsigned lanes) {  // "0-15,17"
    bool first = true;
    for (int l = 0; l < 32;) {
        if (!((lanes >> l) & 1u)) { ++l; continue; }
        int e = l;
        while (e + 1 < 32 && ((lanes >> (e + 1)) & 1u)) ++e;
        append(first ? "%d" : ",%d", l);
        if (e > l) append("-%d", e);
        first = false;
        l = e + 1;
    }
}
static void append_thread(const Fiber* f) {
    append("thread (%u,%u,%u) (warp %d lane %d)", f->idx.x, f->idx.y, f->idx.z, f->warp, f->lane);
}
static void yield_fiber(Fiber* f);

// Ends the launch from inside a thread: the message is in R.error; never returns.
[[noreturn]] static void abandon() {
    Fiber* f = R.current;
    R.failed = true;
    f->state = ABANDONED;
    f->dirty = true;
    yield_fiber(f);
    __builtin_trap();  // never resumed
}

// ---- switching ---------------------------------------------------------------------------
static void resume(Fiber* f) {
    R.current = f;
    threadIdx = f->idx;
    asan_start(&R.sched_fake, f->stack, f->stack_size);
    switch_context(&R.sched, &f->ctx);
    asan_finish(R.sched_fake, nullptr, nullptr);
    R.current = nullptr;
}
static void yield_fiber(Fiber* f) {
    asan_start(&f->fake_stack, R.sched_bottom, R.sched_size);
    switch_context(&f->ctx, &R.sched);
    asan_finish(f->fake_stack, &R.sched_bottom, &R.sched_size);
}
static void on_exit(Fiber* f);
static void fiber_main() {
    Fiber* f = R.current;
    asan_finish(nullptr, &R.sched_bottom, &R.sched_size);
    R.entry->invoke(R.entry->fn, R.args);
    f->state = DONE;
    ++R.done;
    on_exit(f);
    asan_start(nullptr, R.sched_bottom, R.sched_size);
    switch_context(&f->ctx, &R.sched);
    __builtin_trap();
}

// ---- barriers ----------------------------------------------------------------------------
static bool same_site(const Fiber* a, const Fiber* b) {
    return a->line == b->line && (a->file == b->file || strcmp(a->file, b->file) == 0) &&
           (a->what == b->what || strcmp(a->what, b->what) == 0);
}

__attribute__((noinline)) int barrier(int predicate, const char* what, const char* file, int line) {
    Fiber* f = R.current;
    f->state = AT_BARRIER;
    f->what = what;
    f->file = file;
    f->line = line;
    f->value = predicate != 0;
    if (++R.at_barrier == R.n) {  // the last thread of the block: release them all
        const Fiber* first = &R.fibers[0];
        int count = 0;
        for (int i = 0; i < R.n; ++i) {
            const Fiber* g = &R.fibers[i];
            if (!same_site(g, first)) {
                begin_error();
                append("threads wait at different barriers: ");
                append_thread(first);
                append(" at %s (%s:%d), ", first->what, first->file, first->line);
                append_thread(g);
                append(" at %s (%s:%d). A barrier must be reached by every thread of the block at the same "
                       "call (a barrier in divergent code is undefined behaviour on the GPU).",
                       g->what, g->file, g->line);
                abandon();
            }
            count += (int)g->value;
        }
        for (int i = 0; i < R.n; ++i) {
            R.fibers[i].state = RUNNABLE;
            R.fibers[i].result = (unsigned long long)count;
        }
        R.at_barrier = 0;
    }
    yield_fiber(f);
    return (int)f->result;
}

// ---- warp collectives --------------------------------------------------------------------
static bool is_shuffle(Collective k) { return k == SHFL || k == SHFL_UP || k == SHFL_DOWN || k == SHFL_XOR; }

static void report_collective(const Fiber* f) {
    append("%s (%s:%d) with mask 0x%08x", f->what, f->file, f->line, f->mask);
    if (is_shuffle(f->kind)) append(", width %d", f->width);
}

// The lane a shuffle of lane l reads, per the CUDA C Programming Guide (width segments).
static int shuffle_source(const Fiber* f, int l) {
    const int width = f->width, seg = (l / width) * width, in_seg = l - seg;
    switch (f->kind) {
        case SHFL: return seg + (f->arg & (width - 1));
        case SHFL_UP: return (f->arg >= 0 && in_seg >= f->arg) ? l - f->arg : l;
        case SHFL_DOWN: return (f->arg >= 0 && in_seg + f->arg < width) ? l + f->arg : l;
        case SHFL_XOR: {
            const int src = l ^ f->arg;
            return (src < 0 || src >= seg + width) ? l : src;  // later segments: own value
        }
        default: return l;
    }
}

// Completes the collective of warp w with this mask if every non-exited lane of the mask
// waits at one; returns whether it did.
static bool try_complete(int w, unsigned mask) {
    Fiber* lanes = &R.fibers[w * 32];
    const int present = R.n - w * 32 < 32 ? R.n - w * 32 : 32;
    unsigned waiting = 0;
    for (int l = 0; l < present; ++l) {
        if (!((mask >> l) & 1u) || lanes[l].state == DONE) continue;
        if (lanes[l].state != AT_WARP || lanes[l].mask != mask) return false;
        waiting |= 1u << l;
    }
    if (!waiting) return false;
    const Fiber* first = &lanes[__builtin_ctz(waiting)];
    for (int l = 0; l < present; ++l) {
        if (!((waiting >> l) & 1u)) continue;
        const Fiber* g = &lanes[l];
        if (g->kind != first->kind || (is_shuffle(g->kind) && g->width != first->width)) {
            begin_error();
            append("divergent warp collective in warp %d: lane %d calls ", w, first->lane);
            report_collective(first);
            append(" while lane %d calls ", g->lane);
            report_collective(g);
            append(". Every lane named in the mask must execute the same intrinsic with the same mask.");
            abandon();
        }
    }
    unsigned long long ballot = 0;
    bool all = true;
    long long sum = 0, lo = 0, hi = 0, bit_and = ~0ll, bit_or = 0, bit_xor = 0;
    bool first_value = true;
    for (int l = 0; l < present; ++l) {
        if (!((waiting >> l) & 1u)) continue;
        const unsigned long long v = lanes[l].value;
        if (v) ballot |= 1ull << l; else all = false;
        // REDUCE_*: 32-bit operands, signed when arg says so.
        const long long x = lanes[l].arg ? (long long)(int)(unsigned)v : (long long)(unsigned)v;
        sum += x;
        bit_and &= x;
        bit_or |= x;
        bit_xor ^= x;
        if (first_value || x < lo) lo = x;
        if (first_value || x > hi) hi = x;
        first_value = false;
    }
    for (int l = 0; l < present; ++l) {
        if (!((waiting >> l) & 1u)) continue;
        Fiber* g = &lanes[l];
        switch (g->kind) {
            case BALLOT: g->result = ballot; break;
            case ANY: g->result = ballot != 0; break;
            case ALL: g->result = all; break;
            case SYNCWARP: g->result = 0; break;
            case REDUCE_ADD: g->result = (unsigned long long)(unsigned)sum; break;
            case REDUCE_MIN: g->result = (unsigned long long)(unsigned)lo; break;
            case REDUCE_MAX: g->result = (unsigned long long)(unsigned)hi; break;
            case REDUCE_AND: g->result = (unsigned long long)(unsigned)bit_and; break;
            case REDUCE_OR: g->result = (unsigned long long)(unsigned)bit_or; break;
            case REDUCE_XOR: g->result = (unsigned long long)(unsigned)bit_xor; break;
            case MATCH_ANY: {
                unsigned same = 0;
                for (int k = 0; k < present; ++k) {
                    if (((waiting >> k) & 1u) && (unsigned)lanes[k].value == (unsigned)g->value) same |= 1u << k;
                }
                g->result = same;
                break;
            }
            default: {
                const int src = shuffle_source(g, l);
                if (src != l && (src >= present || !((waiting >> src) & 1u))) {
                    begin_error();
                    append("in warp %d lane %d's ", w, l);
                    report_collective(g);
                    append(" reads lane %d, which %s: the value is undefined on the GPU.", src,
                           src >= present ? "does not exist (the block ends before it)"
                           : !((mask >> src) & 1u) ? "is not in the mask" : "has exited");
                    abandon();
                }
                g->result = lanes[src].value;
            }
        }
    }
    for (int l = 0; l < present; ++l) {
        if ((waiting >> l) & 1u) lanes[l].state = RUNNABLE;
    }
    R.warp_waiting[w] -= __builtin_popcount(waiting);
    return true;
}

__attribute__((noinline)) unsigned long long collective(Collective kind, unsigned mask, unsigned long long value,
                                                        int arg, int width, const char* what, const char* file,
                                                        int line) {
    Fiber* f = R.current;
    f->kind = kind;
    f->mask = mask;
    f->value = value;
    f->arg = arg;
    f->width = width;
    f->what = what;
    f->file = file;
    f->line = line;
    if (!((mask >> f->lane) & 1u)) {
        begin_error();
        append_thread(f);
        append(" calls %s (%s:%d) with mask 0x%08x, which does not name its own lane.", what, file, line, mask);
        abandon();
    }
    if (is_shuffle(kind) && (width < 1 || width > 32 || (width & (width - 1)))) {
        begin_error();
        append_thread(f);
        append(" calls %s (%s:%d) with width %d: it must be a power of two <= 32.", what, file, line, width);
        abandon();
    }
    f->state = AT_WARP;
    // Cheap necessary condition first: enough lanes of the warp wait or have exited.
    const int present = R.n - f->warp * 32 < 32 ? R.n - f->warp * 32 : 32;
    const unsigned present_mask = present == 32 ? 0xffffffffu : (1u << present) - 1u;
    if (++R.warp_waiting[f->warp] + R.warp_done[f->warp] >= __builtin_popcount(mask & present_mask)) {
        try_complete(f->warp, mask);
    }
    yield_fiber(f);
    return f->result;
}

unsigned active_mask() {
    const Fiber* f = R.current;
    const Fiber* lanes = &R.fibers[f->warp * 32];
    const int present = R.n - f->warp * 32 < 32 ? R.n - f->warp * 32 : 32;
    unsigned m = 0;
    for (int l = 0; l < present; ++l) {
        if (lanes[l].state != DONE) m |= 1u << l;
    }
    return m;
}

// An exited lane no longer holds back the collectives of its warp that name it.
static void on_exit(Fiber* f) {
    ++R.warp_done[f->warp];
    if (!R.warp_waiting[f->warp]) return;
    Fiber* lanes = &R.fibers[f->warp * 32];
    const int present = R.n - f->warp * 32 < 32 ? R.n - f->warp * 32 : 32;
    for (int l = 0; l < present; ++l) {
        if (lanes[l].state == AT_WARP && ((lanes[l].mask >> f->lane) & 1u)) try_complete(f->warp, lanes[l].mask);
    }
}

// ---- deadlock report -----------------------------------------------------------------------
static void describe_deadlock() {
    begin_error();
    append("deadlock: no thread of the block can go on (%d of %d exited).", R.done, R.n);
    // Barrier waiters, grouped by call.
    bool seen[1024] = {false};
    for (int i = 0; i < R.n; ++i) {
        const Fiber* f = &R.fibers[i];
        if (f->state != AT_BARRIER || seen[i]) continue;
        int count = 0;
        for (int j = i; j < R.n; ++j) {
            if (R.fibers[j].state == AT_BARRIER && same_site(&R.fibers[j], f)) { seen[j] = true; ++count; }
        }
        append(" %d thread(s), the first ", count);
        append_thread(f);
        append(", wait at %s (%s:%d).", f->what, f->file, f->line);
    }
    int warps_shown = 0;
    for (int w = 0; w * 32 < R.n && warps_shown < 4; ++w) {
        const Fiber* lanes = &R.fibers[w * 32];
        const int present = R.n - w * 32 < 32 ? R.n - w * 32 : 32;
        unsigned shown = 0;
        for (int l = 0; l < present; ++l) {
            if (lanes[l].state != AT_WARP || ((shown >> l) & 1u)) continue;
            unsigned same = 0;
            for (int k = l; k < present; ++k) {
                if (lanes[k].state == AT_WARP && lanes[k].kind == lanes[l].kind && lanes[k].mask == lanes[l].mask &&
                    same_site(&lanes[k], &lanes[l])) same |= 1u << k;
            }
            shown |= same;
            append(" Warp %d lanes ", w);
            append_lanes(same);
            append(" wait at ");
            report_collective(&lanes[l]);
            unsigned missing = 0;
            for (int k = 0; k < present; ++k) {
                if (((lanes[l].mask >> k) & 1u) && lanes[k].state != DONE && !((same >> k) & 1u)) missing |= 1u << k;
            }
            if (missing) {
                append(" for lanes ");
                append_lanes(missing);
                append(" (elsewhere)");
            }
            append(".");
        }
        if (shown) ++warps_shown;
    }
    if (R.at_barrier > 0 && R.done > 0) {
        append(" Threads that exit before a __syncthreads() the others reach leave them waiting: on the GPU "
               "every thread of the block must reach each barrier (undefined behaviour: a hang or garbage).");
    } else if (R.at_barrier > 0) {
        append(" A barrier inside divergent code (or a warp collective some lanes never reach) waits forever.");
    }
}

// ---- blocks ------------------------------------------------------------------------------
static void fill_shared() {
    if (R.anchor) {
        for (int i = 0; i < R.num_statics; ++i) {
            memset(reinterpret_cast<unsigned char*>((uintptr_t)R.anchor + R.statics[i].offset), R.poison,
                   R.statics[i].size);
        }
    }
    if (R.dynamic_shared && R.dynamic_bytes) memset(R.dynamic_shared, R.poison, R.dynamic_bytes);
}

static bool run_block(uint3 block, bool reverse) {
    blockIdx = block;
    R.done = 0;
    R.at_barrier = 0;
    for (int w = 0; w < 32; ++w) R.warp_waiting[w] = R.warp_done[w] = 0;
    for (int i = 0; i < R.n; ++i) {
        Fiber* f = &R.fibers[i];
        if (f->dirty) {
#ifdef CUDACPU_ASAN
            __asan_unpoison_memory_region(f->stack, f->stack_size);
#endif
            f->dirty = false;
        }
        f->linear = i;
        f->idx.x = (unsigned)i % blockDim.x;
        f->idx.y = ((unsigned)i / blockDim.x) % blockDim.y;
        f->idx.z = (unsigned)i / (blockDim.x * blockDim.y);
        f->warp = i / 32;
        f->lane = i % 32;
        f->state = RUNNABLE;
        f->fake_stack = nullptr;
        make_context(&f->ctx, f->stack, f->stack_size, &fiber_main);
    }
    fill_shared();
    for (;;) {
        bool ran = false;
        for (int k = 0; k < R.n; ++k) {
            Fiber* f = &R.fibers[reverse ? R.n - 1 - k : k];
            if (f->state != RUNNABLE) continue;
            resume(f);
            ran = true;
            if (R.failed) {
                for (int i = 0; i < R.n; ++i) {
                    if (R.fibers[i].state != DONE) R.fibers[i].dirty = true;
                }
                return false;
            }
        }
        if (R.done == R.n) return true;
        if (!ran) {
            describe_deadlock();
            for (int i = 0; i < R.n; ++i) {
                if (R.fibers[i].state != DONE) R.fibers[i].dirty = true;
            }
            R.failed = true;
            return false;
        }
    }
}

static bool ensure_fibers(int n) {
    if (n <= R.capacity) return true;
    Fiber* fibers = static_cast<Fiber*>(calloc((size_t)n, sizeof(Fiber)));
    if (!fibers) return false;
    for (int i = 0; i < R.capacity; ++i) fibers[i] = R.fibers[i];
    for (int i = R.capacity; i < n; ++i) {
        void* mem = mmap(nullptr, kStackSize + kGuard, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) return false;
        mprotect(mem, kGuard, PROT_NONE);  // a stack overflow faults instead of corrupting
        fibers[i].stack = static_cast<char*>(mem) + kGuard;
        fibers[i].stack_size = kStackSize;
    }
    free(R.fibers);
    R.fibers = fibers;
    R.capacity = n;
    return true;
}

}  // namespace cudacpu

// ---- the host side's interface (ctypes) ----------------------------------------------------
CUDACPU_API void* cudacpu_alloc(unsigned long long pad, unsigned long long size) {
    // pad bytes before the array keep the caller's address alignment (mod 256); they are
    // poisoned, so the array's own bounds are exact on both sides.
    void* base = nullptr;
    if (posix_memalign(&base, 256, (size_t)(pad + size) ? (size_t)(pad + size) : 1) != 0) return nullptr;
#ifdef CUDACPU_ASAN
    if (pad) __asan_poison_memory_region(base, (size_t)pad);
#endif
    return static_cast<unsigned char*>(base) + pad;
}
CUDACPU_API void cudacpu_free(void* p, unsigned long long pad) {
    unsigned char* base = static_cast<unsigned char*>(p) - pad;
#ifdef CUDACPU_ASAN
    if (pad) __asan_unpoison_memory_region(base, (size_t)pad);
#endif
    free(base);
}

// Static __shared__ variables (offsets from cudacpu_anchor, from the symbol table): refilled
// with garbage at every block start, as on the GPU nothing carries over between blocks.
CUDACPU_API void cudacpu_set_static_shared(const unsigned long long* offsets, const unsigned long long* sizes,
                                           int count);
// Provided by the appended part of the code (the extern __shared__ buffer, if any).
extern unsigned char* cudacpu_dynamic_shared_buffer(unsigned long long* capacity);
extern const unsigned char cudacpu_anchor;

CUDACPU_API void cudacpu_set_static_shared(const unsigned long long* offsets, const unsigned long long* sizes,
                                           int count) {
    static cudacpu::SharedVar vars[4096];
    if (count > 4096) count = 4096;
    for (int i = 0; i < count; ++i) vars[i] = cudacpu::SharedVar{offsets[i], sizes[i]};
    cudacpu::R.statics = vars;
    cudacpu::R.num_statics = count;
    cudacpu::R.anchor = &cudacpu_anchor;
}

// Runs every block of one launch; returns NULL, or what went wrong (a configuration the GPU
// rejects, a deadlock, a divergent collective). ASan/UBSan findings abort the process.
CUDACPU_API const char* cudacpu_launch(const cudacpu::Entry* e, const unsigned* grid, const unsigned* block,
                                       unsigned long long shared_bytes, void** args, int reverse, int poison) {
    using namespace cudacpu;
    R.entry = e;
    R.args = args;
    R.failed = false;
    R.poison = (unsigned char)poison;
    error_len = 0;
    const unsigned long long threads = (unsigned long long)block[0] * block[1] * block[2];
    const unsigned long long limit = e->max_threads > 0 ? (unsigned long long)e->max_threads : 1024ull;
    if (!threads || !grid[0] || !grid[1] || !grid[2] || block[0] > 1024 || block[1] > 1024 || block[2] > 64 ||
        threads > limit || grid[1] > 65535 || grid[2] > 65535 || grid[0] > 2147483647u) {
        snprintf(R.error, sizeof(R.error),
                 "%s: invalid launch configuration: grid (%u,%u,%u), block (%u,%u,%u) (%llu threads; at most %llu%s)",
                 e->name, grid[0], grid[1], grid[2], block[0], block[1], block[2], threads, limit,
                 e->max_threads > 0 ? " by __launch_bounds__" : "");
        return R.error;
    }
    unsigned long long capacity = 0;
    R.dynamic_shared = cudacpu_dynamic_shared_buffer(&capacity);
    const unsigned long long default_limit = 48 * 1024;  // without cudaFuncSetAttribute, which CuPy's launch does not call
    if (shared_bytes > default_limit || (shared_bytes && !R.dynamic_shared)) {
        snprintf(R.error, sizeof(R.error), "%s: %llu bytes of dynamic shared memory %s", e->name, shared_bytes,
                 shared_bytes > default_limit ? "exceed the default per-block limit of 49152"
                                              : "requested, but the source declares no extern __shared__ array");
        return R.error;
    }
    R.dynamic_bytes = shared_bytes;
#ifdef CUDACPU_ASAN
    if (R.dynamic_shared) {
        __asan_unpoison_memory_region(R.dynamic_shared, (size_t)shared_bytes);
        __asan_poison_memory_region(R.dynamic_shared + shared_bytes, (size_t)(capacity - shared_bytes));
    }
#endif
    if (!ensure_fibers((int)threads)) {
        snprintf(R.error, sizeof(R.error), "%s: out of memory for %llu thread stacks", e->name, threads);
        return R.error;
    }
    R.n = (int)threads;
    blockDim = dim3(block[0], block[1], block[2]);
    gridDim = dim3(grid[0], grid[1], grid[2]);
    const unsigned long long blocks = (unsigned long long)grid[0] * grid[1] * grid[2];
    for (unsigned long long k = 0; k < blocks; ++k) {
        const unsigned long long b = reverse ? blocks - 1 - k : k;
        uint3 idx;
        idx.x = (unsigned)(b % grid[0]);
        idx.y = (unsigned)((b / grid[0]) % grid[1]);
        idx.z = (unsigned)(b / ((unsigned long long)grid[0] * grid[1]));
        if (!run_block(idx, reverse != 0)) return R.error;
    }
    return nullptr;
}

#endif  // CUDACPU_RUNTIME_H
