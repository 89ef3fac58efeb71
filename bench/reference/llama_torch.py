"""The benches' LLaMA-style model in PyTorch (Debian's python3-torch 1.13, CPU, fp32), run beside ours.

A line protocol lets a bench interleave repetitions of ours and this reference in one run, so that machine
noise hits both alike:
    python3 llama_torch.py '{"vocab": 4096, "hidden": 256, ..., "threads": 2}'
      -> {"ready": true, "torch": "1.13.1", "threads": 2, "blas": "..."}
    stdin "train" | "forward" | "sample"  -> {"seconds": s} (one repetition, timed here)
    stdin "quit" (or EOF)                 -> exits
train: forward + cross-entropy + backward + AdamW on [batch, seq]; forward: no-grad forward + log-softmax;
sample: KV-cache sampling of `new` tokens at temperature 1 after prompts of `prompt` tokens (batch rows),
with a preallocated cache (a tuned hand-written loop, not transformers' generate).
Run it under OpenBLAS's OpenMP build with as many threads as ours:
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp OMP_NUM_THREADS=2
OpenBLAS picks its kernels by CPU model; a model newer than the library (Debian's 0.3.21 on 2023 Xeons)
falls back to SSE3 "Prescott" kernels, 4-8x slower. Then this script restarts itself with the core type that
matches the CPU's vector units (OPENBLAS_CORETYPE=SkylakeX with AVX-512, Haswell with AVX2) and says so.
"""
import ctypes
import json
import math
import os
import sys
import time


def openblas_core():
    for name in ("libopenblas.so.0", "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return None


GENERIC_CORES = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine", "northwood", "banias"}
if "OPENBLAS_CORETYPE" not in os.environ:
    core = openblas_core()
    flags = set(open("/proc/cpuinfo").read().split()) if os.path.exists("/proc/cpuinfo") else set()
    if core and core.lower() in GENERIC_CORES and "avx2" in flags:
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX" if "avx512f" in flags else "Haswell"
        os.environ["FARM_OPENBLAS_DETECTED"] = core
        os.execv(sys.executable, [sys.executable] + sys.argv)

import torch
import torch.nn as nn
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
V, C, L, NH, I = cfg["vocab"], cfg["hidden"], cfg["layers"], cfg["heads"], cfg["intermediate"]
NKV = cfg.get("kv_heads", NH)
HD = C // NH
MAXPOS = cfg.get("max_pos", 512)


class RMSNorm(nn.Module):
    def __init__(s, c):
        super().__init__()
        s.w = nn.Parameter(torch.ones(c))

    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * s.w


inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
ang = torch.outer(torch.arange(MAXPOS).float(), inv)
COS, SIN = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)  # [MAXPOS, HD]


def rot(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)


def rope(x, pos0, n):  # x [B, H, n, HD] at positions pos0 .. pos0 + n - 1
    c, s = COS[pos0:pos0 + n], SIN[pos0:pos0 + n]
    return x * c + rot(x) * s


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.n2 = RMSNorm(C), RMSNorm(C)
        s.q, s.o = nn.Linear(C, NH * HD, bias=False), nn.Linear(NH * HD, C, bias=False)
        s.k, s.v = nn.Linear(C, NKV * HD, bias=False), nn.Linear(C, NKV * HD, bias=False)
        s.g, s.u = nn.Linear(C, I, bias=False), nn.Linear(C, I, bias=False)
        s.d = nn.Linear(I, C, bias=False)

    def forward(s, x, cache=None, pos0=0):
        B, T, _ = x.shape
        h = s.n1(x)
        q = s.q(h).view(B, T, NH, HD).transpose(1, 2)
        k = s.k(h).view(B, T, NKV, HD).transpose(1, 2)
        v = s.v(h).view(B, T, NKV, HD).transpose(1, 2)
        q, k = rope(q, pos0, T), rope(k, pos0, T)
        if cache is not None:  # write this chunk, attend over everything so far
            kc, vc = cache
            kc[:, :, pos0:pos0 + T] = k
            vc[:, :, pos0:pos0 + T] = v
            k, v = kc[:, :, :pos0 + T], vc[:, :, :pos0 + T]
        if NKV != NH:
            k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
        if T > 1:
            S = k.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool).triu(S - T + 1)
            att = att.masked_fill(mask, float("-inf"))
        att = att.softmax(-1)
        x = x + s.o((att @ v).transpose(1, 2).reshape(B, T, NH * HD))
        h = s.n2(x)
        return x + s.d(F.silu(s.g(h)) * s.u(h))


class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(V, C)
        s.blocks = nn.ModuleList(Block() for _ in range(L))
        s.norm = RMSNorm(C)
        s.head = nn.Linear(C, V, bias=False)

    def forward(s, idx, caches=None, pos0=0):
        x = s.emb(idx)
        for i, b in enumerate(s.blocks):
            x = b(x, None if caches is None else caches[i], pos0)
        return s.head(s.norm(x))


m = Model()
for p in m.parameters():  # LLaMA init scale, so that logits are as peaked as ours
    if p.dim() == 2:
        nn.init.normal_(p, std=0.02)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.1)
B, T = cfg.get("batch", 8), cfg.get("seq", 256)
idx = torch.randint(0, V, (B, T))
tgt = torch.randint(0, V, (B, T))
SB, SP, SN = cfg.get("sample_batch", 8), cfg.get("prompt", 32), cfg.get("new", 128)
prompts = torch.tensor([[(b * 131 + t * 17 + 1) % V for t in range(SP)] for b in range(SB)])
gen = torch.Generator().manual_seed(1)


def train():
    logits = m(idx)
    loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


def forward():
    with torch.no_grad():
        F.log_softmax(m(idx), -1)


def sample():
    with torch.inference_mode():
        caches = [(torch.empty(SB, NKV, SP + SN, HD), torch.empty(SB, NKV, SP + SN, HD)) for _ in range(L)]
        logits = m(prompts, caches, 0)[:, -1]
        for step in range(SN):
            tok = torch.multinomial(F.softmax(logits, -1), 1, generator=gen)
            logits = m(tok, caches, SP + step)[:, -1]


WORK = {"train": train, "forward": forward, "sample": sample}


def blas():
    try:
        return torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0]
    except Exception:
        return "?"


print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas(),
                  "openblas_core": openblas_core(), "openblas_detected": os.environ.get("FARM_OPENBLAS_DETECTED")}), flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "quit":
        break
    if cmd not in WORK:
        print(json.dumps({"error": f"unknown command {cmd!r}"}), flush=True)
        continue
    t = time.perf_counter()
    WORK[cmd]()
    print(json.dumps({"seconds": time.perf_counter() - t}), flush=True)
