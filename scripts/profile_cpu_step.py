#!/usr/bin/env python3
"""Profile one training step of trldm's network, written out in eager PyTorch
(the same ATen ops as src/model with `model.cpu_kernels = "aten"`: fused qkv
and w12 projections, F.rms_norm, half-split RoPE with cat, math attention,
TRM's fixed start, n = 2, T = 1, Eq. 3 loss, AdamW, an EMA), so that the
share of each ATen op can be read with torch.profiler; tch has no profiler.

    .venv/bin/python scripts/profile_cpu_step.py [bf16]

Prints steps/s and the profiler's table (self CPU time per op) for 10 steps
at the reference configuration (9x9 mazes: L = 81, d = 128, 4 heads,
2 layers, batch 64, 2 threads). docs/FACTS.md, "CPU speed", quotes it.
"""
import torch, sys, math
import torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(2); torch.manual_seed(0)
B, L, d, H, V = 64, 81, 128, 4, 7
hd = d // H
half = hd // 2
inv = torch.exp(torch.arange(half).float() * (-2 * math.log(10000) / hd))
ang = torch.arange(L).float()[:, None] * inv[None]
ang = torch.cat([ang, ang], 1); COS, SIN = ang.cos(), ang.sin()
def rope(x):
    x1, x2 = x[..., :half], x[..., half:]
    return x * COS + torch.cat([-x2, x1], -1) * SIN
class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.qkv = nn.Linear(d, 3*d, bias=False); s.out = nn.Linear(d, d, bias=False)
        s.w12 = nn.Linear(d, 8*d, bias=False); s.w3 = nn.Linear(4*d, d, bias=False)
        s.n1 = nn.Parameter(torch.ones(d)); s.n2 = nn.Parameter(torch.ones(d))
    def attn(s, x):
        qkv = s.qkv(x).view(B, L, 3, H, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        q, k = rope(q), rope(k)
        w = q @ k.transpose(-1, -2) * hd ** -0.5
        a = w.softmax(-1).to(v.dtype) @ v
        return s.out(a.transpose(1, 2).reshape(B, L, d))
    def forward(s, x):
        x = x + s.attn(F.rms_norm(x, [d], s.n1, 1e-6))
        g, u = s.w12(F.rms_norm(x, [d], s.n2, 1e-6)).chunk(2, -1)
        return x + s.w3(F.silu(g) * u)
class M(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(V+1, d); s.blocks = nn.ModuleList([Block(), Block()])
        s.no = nn.Parameter(torch.ones(d)); s.head = nn.Linear(d, V, bias=False); s.halt = nn.Linear(d, 1)
        s.y0 = nn.Parameter(torch.randn(d)); s.z0 = nn.Parameter(torch.randn(d))
    def net(s, h):
        for b in s.blocks: h = b(h)
        return h
    def forward(s, tok):
        x = s.emb(tok); y = s.y0.expand_as(x); z = s.z0.expand_as(x)
        for _ in range(2): z = s.net(x + y + z)
        y = s.net(y + z)
        h = F.rms_norm(y, [d], s.no, 1e-6)
        return s.head(h), s.halt(h.mean(1)).squeeze(-1)
m = M()
opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1, foreach=False)
ema = [p.detach().clone() for p in m.parameters()]
bf = len(sys.argv) > 1
def step():
    tgt = torch.randint(0, V-1, (B, L)); t = torch.rand(B) * 0.9 + 0.1
    mask = torch.rand(B, L) < t[:, None]; tok = tgt.masked_fill(mask, V)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf):
        lg, _ = m(tok)
    nll = -lg.log_softmax(-1, dtype=torch.float).gather(2, tgt[..., None]).squeeze(-1)
    loss = ((nll * mask.float()).sum(1) / (t * L)).mean()
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0, foreach=False); opt.step()
    with torch.no_grad():
        for e, p in zip(ema, m.parameters()): e.mul_(0.99).add_(p, alpha=0.01)
import time
for _ in range(5): step()
t0 = time.time()
for _ in range(20): step()
print("s/step", (time.time() - t0) / 20, "tokens/s", 20 * B * L / (time.time() - t0))
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU]) as p:
    for _ in range(10): step()
print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=22))
