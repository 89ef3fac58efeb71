// The fiber scheduler behind emu.h (FARM_CUDA_EMU builds only). One block at a time: its threads run as
// fibers until they reach a barrier; a block barrier opens when every live thread of the block
// waits at one, a warp barrier when every live lane of the warp does. Between barriers the fibers run in
// an order shuffled per launch, so a missing __syncthreads() changes results instead of hiding. A state
// where no thread can move (a barrier inside divergent code) aborts with the kernel's name.
#include "emu.h"
#include <sys/mman.h>
#if !defined(__x86_64__)
#error "the CUDA emulation (FARM_CUDA_EMU) switches stacks with x86-64 code"
#endif
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>

namespace farm::emu {
namespace {

enum State { Ready, AtBlockBarrier, AtWarpBarrier, Done };

// A stack switch of our own: callee-saved registers on the stack, stack pointers swapped. (ucontext's
// swapcontext makes a system call per switch; kernels switch at every barrier and shuffle.)
extern "C" void farm_emu_switch(void** save_sp, void* next_sp);
asm(R"(
.text
.globl farm_emu_switch
.type farm_emu_switch, @function
farm_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size farm_emu_switch, .-farm_emu_switch
.section .note.GNU-stack,"",@progbits
.text
)");

struct Fiber {
  void* sp = nullptr;
  dim3 idx;
  int linear = 0;
  State state = Ready;
};

constexpr size_t kStack = 256 << 10;

struct Machine {
  std::mutex mu;  // one launch at a time in the process
  std::vector<Fiber> fibers;
  std::vector<char*> stacks;
  std::vector<unsigned char> smem;
  void* scheduler_sp = nullptr;
  int current = -1;
  dim3 block, grid, block_dim;
  const std::function<void()>* body = nullptr;
  const char* name = "";
  // warp exchange slots and mma operands, per warp
  std::vector<uint64_t> xchg;
  std::vector<uint32_t> mma_a, mma_b;
  uint64_t shuffle_state = 0x9e3779b97f4a7c15ULL;
};

Machine& M() {
  static Machine* m = [] {
    auto* mm = new Machine();  // never destroyed: fibers may be referenced at exit
    // FARM_EMU_SEED varies the thread order between barriers (run the tests under several seeds to hunt races)
    if (const char* s = std::getenv("FARM_EMU_SEED")) mm->shuffle_state ^= std::strtoull(s, nullptr, 10) * 0xbf58476d1ce4e5b9ULL;
    if (mm->shuffle_state == 0) mm->shuffle_state = 1;
    return mm;
  }();
  return *m;
}

// First code of every fiber; never returns (a finished fiber switches to the scheduler for good).
void entry() {
  Machine& m = M();
  (*m.body)();
  Fiber& f = m.fibers[m.current];
  f.state = Done;
  farm_emu_switch(&f.sp, m.scheduler_sp);
  std::abort();
}

// A fresh stack whose first switch "returns" into entry() with the ABI's alignment (rsp = 8 mod 16).
void* fresh_stack(char* stack) {
  uintptr_t top = ((uintptr_t)(stack + kStack)) & ~(uintptr_t)15;
  void** p = reinterpret_cast<void**>(top);
  *--p = nullptr;                            // entry()'s return address (never used)
  *--p = reinterpret_cast<void*>(&entry);   // where the switch's `ret` goes
  for (int i = 0; i < 6; i++) *--p = nullptr;  // rbp, rbx, r12-r15
  return p;
}

void block_until(State s) {
  Machine& m = M();
  Fiber& f = m.fibers[m.current];
  f.state = s;
  farm_emu_switch(&f.sp, m.scheduler_sp);
}

uint64_t next_random(uint64_t& s) {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}

void run_block(Machine& m, int nthreads) {
  m.fibers.resize(nthreads);
  while ((int)m.stacks.size() < nthreads) {
    void* p = mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { std::fprintf(stderr, "farm emu: cannot map a fiber stack\n"); std::abort(); }
    m.stacks.push_back(static_cast<char*>(p));
  }
  for (int t = 0; t < nthreads; t++) {
    Fiber& f = m.fibers[t];
    f.linear = t;
    f.idx = dim3(t % m.block_dim.x, (t / m.block_dim.x) % m.block_dim.y, t / (m.block_dim.x * m.block_dim.y));
    f.state = Ready;
    f.sp = fresh_stack(m.stacks[t]);
  }
  const int nwarps = (nthreads + 31) / 32;
  std::vector<int> order(nthreads);
  for (int t = 0; t < nthreads; t++) order[t] = t;
  int done = 0;
  while (done < nthreads) {
    // shuffled order between barriers
    for (int i = nthreads - 1; i > 0; i--) std::swap(order[i], order[next_random(m.shuffle_state) % (i + 1)]);
    bool progress = false;
    for (int t : order) {
      if (m.fibers[t].state != Ready) continue;
      m.current = t;
      farm_emu_switch(&m.scheduler_sp, m.fibers[t].sp);
      progress = true;
      if (m.fibers[t].state == Done) done++;
    }
    if (done == nthreads) break;
    bool released = false;
    int live = 0, at_block = 0;
    for (const Fiber& f : m.fibers) {
      if (f.state != Done) live++;
      if (f.state == AtBlockBarrier) at_block++;
    }
    if (live > 0 && at_block == live) {
      for (Fiber& f : m.fibers)
        if (f.state == AtBlockBarrier) f.state = Ready;
      released = true;
    }
    for (int w = 0; w < nwarps; w++) {
      int lw = 0, aw = 0;
      for (int t = w * 32; t < std::min(nthreads, w * 32 + 32); t++) {
        if (m.fibers[t].state != Done) lw++;
        if (m.fibers[t].state == AtWarpBarrier) aw++;
      }
      if (lw > 0 && aw == lw) {
        for (int t = w * 32; t < std::min(nthreads, w * 32 + 32); t++) m.fibers[t].state = Ready;
        released = true;
      }
    }
    if (!progress && !released) {
      std::fprintf(stderr, "farm emu: deadlock in kernel %s (a barrier or warp intrinsic in divergent code), block (%u,%u,%u)\n",
                   m.name, m.block.x, m.block.y, m.block.z);
      std::abort();
    }
  }
}

}  // namespace

void launch(const char* name, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body) {
  Machine& m = M();
  std::lock_guard<std::mutex> lk(m.mu);
  const int nthreads = (int)(block.x * block.y * block.z);
  if (nthreads < 1 || nthreads > 1024) { std::fprintf(stderr, "farm emu: bad block size in %s\n", name); std::abort(); }
  if (grid.x == 0 || grid.y == 0 || grid.z == 0) { std::fprintf(stderr, "farm emu: empty grid in %s\n", name); std::abort(); }
  if (grid.y > 65535 || grid.z > 65535) { std::fprintf(stderr, "farm emu: grid.y/z over 65535 in %s\n", name); std::abort(); }
  if (smem > (227u << 10)) { std::fprintf(stderr, "farm emu: %zu bytes of shared memory in %s\n", smem, name); std::abort(); }
  m.name = name;
  m.grid = grid;
  m.block_dim = block;
  m.body = &body;
  m.smem.assign(smem, 0xff);  // NaN pattern
  const int nwarps = (nthreads + 31) / 32;
  m.xchg.assign((size_t)nwarps * 32, 0);
  m.mma_a.assign((size_t)nwarps * 32 * 4, 0);
  m.mma_b.assign((size_t)nwarps * 32 * 2, 0);
  for (unsigned z = 0; z < grid.z; z++)
    for (unsigned y = 0; y < grid.y; y++)
      for (unsigned x = 0; x < grid.x; x++) {
        m.block = dim3(x, y, z);
        if (smem) std::fill(m.smem.begin(), m.smem.end(), 0xff);
        run_block(m, nthreads);
      }
  m.body = nullptr;
}

const dim3& thread_idx() { return M().fibers[M().current].idx; }
const dim3& block_idx() { return M().block; }
const dim3& block_dim() { return M().block_dim; }
const dim3& grid_dim() { return M().grid; }
void* dynamic_smem() { return M().smem.data(); }
void syncthreads() { block_until(AtBlockBarrier); }
void syncwarp() { block_until(AtWarpBarrier); }
int lane_id() { return M().fibers[M().current].linear & 31; }

uint64_t warp_exchange(uint64_t v, int src) {
  Machine& m = M();
  const int t = m.fibers[m.current].linear, base = t & ~31;
  m.xchg[t] = v;
  syncwarp();
  uint64_t r = m.xchg[base + src];
  syncwarp();  // nobody overwrites a slot before every lane has read
  return r;
}

void mma_m16n8k8_tf32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  Machine& m = M();
  const int t = m.fibers[m.current].linear, base = t & ~31, lane = t & 31;
  for (int i = 0; i < 4; i++) m.mma_a[(size_t)t * 4 + i] = a[i];
  for (int i = 0; i < 2; i++) m.mma_b[(size_t)t * 2 + i] = b[i];
  syncwarp();
  // PTX ISA, mma.m16n8k8 .tf32: groupID = lane >> 2, tig = lane % 4.
  //   A: a0 (g, tig), a1 (g+8, tig), a2 (g, tig+4), a3 (g+8, tig+4)
  //   B: b0 (k = tig, n = g), b1 (k = tig+4, n = g)
  //   C/D: c0 (g, 2 tig), c1 (g, 2 tig + 1), c2 (g+8, 2 tig), c3 (g+8, 2 tig + 1)
  auto A = [&](int row, int k) {
    int ln = (row % 8) * 4 + (k % 4), reg = (row >= 8 ? 1 : 0) + (k >= 4 ? 2 : 0);
    return __uint_as_float(m.mma_a[(size_t)(base + ln) * 4 + reg]);
  };
  auto B = [&](int k, int n) {
    int ln = n * 4 + (k % 4), reg = k >= 4 ? 1 : 0;
    return __uint_as_float(m.mma_b[(size_t)(base + ln) * 2 + reg]);
  };
  const int g = lane >> 2, tig = lane & 3;
  float out[4];
  for (int i = 0; i < 4; i++) {
    int row = g + 8 * (i >> 1), col = 2 * tig + (i & 1);
    float s = c[i];
    for (int k = 0; k < 8; k++) s += A(row, k) * B(k, col);
    out[i] = s;
  }
  syncwarp();
  for (int i = 0; i < 4; i++) d[i] = out[i];
}

}  // namespace farm::emu
