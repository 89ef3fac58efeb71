# Side-by-side reference for bench/train-step.ts: the same LLaMA-style model in PyTorch (Debian's
# python3-torch 1.13, CPU, fp32), forward + backward + AdamW, one JSON line with tokens/s medians.
# Run with OpenBLAS's OpenMP build: LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp
import json, math, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
torch.manual_seed(0)
V, C, L, NH, I = cfg["vocab"], cfg["hidden"], cfg["layers"], cfg["heads"], cfg["intermediate"]
B, T, reps = cfg["batch"], cfg["seq"], cfg["reps"]
HD = C // NH

class RMSNorm(nn.Module):
    def __init__(s, c):
        super().__init__(); s.w = nn.Parameter(torch.ones(c))
    def forward(s, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * s.w

inv = 1.0 / (10000 ** (torch.arange(0, HD, 2).float() / HD))
ang = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
def rot(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], -1)

class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.n1, s.n2 = RMSNorm(C), RMSNorm(C)
        s.q, s.k, s.v, s.o = (nn.Linear(C, C, bias=False) for _ in range(4))
        s.g, s.u = nn.Linear(C, I, bias=False), nn.Linear(C, I, bias=False)
        s.d = nn.Linear(I, C, bias=False)
    def forward(s, x):
        h = s.n1(x)
        q, k, v = (m(h).view(B, T, NH, HD).transpose(1, 2) for m in (s.q, s.k, s.v))
        q, k = q * cos + rot(q) * sin, k * cos + rot(k) * sin
        att = (q @ k.transpose(-1, -2)) / math.sqrt(HD)
        att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")).softmax(-1)
        x = x + s.o((att @ v).transpose(1, 2).reshape(B, T, C))
        h = s.n2(x)
        return x + s.d(F.silu(s.g(h)) * s.u(h))

class Model(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(V, C); s.blocks = nn.ModuleList(Block() for _ in range(L))
        s.norm = RMSNorm(C); s.head = nn.Linear(C, V, bias=False)
    def forward(s, idx):
        x = s.emb(idx)
        for b in s.blocks: x = b(x)
        return s.head(s.norm(x))

m = Model()
opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
idx = torch.randint(0, V, (B, T)); tgt = torch.randint(0, V, (B, T))
def train():
    logits = m(idx)
    loss = F.cross_entropy(logits.view(-1, V), tgt.view(-1))
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
def fwd():
    with torch.no_grad():
        logits = m(idx); F.log_softmax(logits, -1)
def med(fn):
    fn(); fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    ts.sort(); return ts[len(ts) // 2]
print(json.dumps({"train_tokens_per_s": B * T / med(train), "forward_tokens_per_s": B * T / med(fwd),
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
