# PyTorch eager fp32 (TF32 off) GPT-2 training steps on the GPU, the baseline for tools/gpu/train-gpt2.ts: the same
# written-out model as tools/reference/gpt2_reference.py (random GPT-2 init), fused AdamW, the same B and T.
#   python3 tools/gpu/torch_gpt2.py --L 12 --C 768 --NH 12 -B 8 -T 1024 --steps 20
import argparse, json, math, os, sys, time
import torch
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "reference"))
from gpt2_reference import forward, NAMES  # noqa: E402

ap = argparse.ArgumentParser()
for flag, default in (("--L", 12), ("--C", 768), ("--NH", 12), ("-B", 8), ("-T", 1024), ("--steps", 20)):
    ap.add_argument(flag, type=int, default=default)
a = ap.parse_args()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"
L, C, NH, V, Vp, maxT = a.L, a.C, a.NH, 50257, 50304, max(1024, a.T)
shapes = [(Vp, C), (maxT, C), (L, C), (L, C), (L, 3 * C, C), (L, 3 * C), (L, C, C), (L, C),
          (L, C), (L, C), (L, 4 * C, C), (L, 4 * C), (L, C, 4 * C), (L, C), (C,), (C,)]
p = {}
for n, s in zip(NAMES, shapes):
    t = torch.zeros(s, device=dev)
    if n.endswith("w") and len(s) >= 2: t.normal_(0, 0.02)
    if n in ("ln1w", "ln2w", "lnfw"): t.fill_(1)
    p[n] = t.requires_grad_(True)
cfg = dict(C=C, NH=NH, L=L, V=V)
opt = torch.optim.AdamW(list(p.values()), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, fused=True)
x = torch.randint(0, V, (a.B, a.T), device=dev)
y = torch.randint(0, V, (a.B, a.T), device=dev)
torch.cuda.reset_peak_memory_stats()
times = []
for s in range(a.steps + 1):
    torch.cuda.synchronize(); t0 = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    _, loss = forward(cfg, p, x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
    opt.step()
    torch.cuda.synchronize()
    if s: times.append((time.perf_counter() - t0) * 1000)
times.sort(); ms = times[len(times) // 2]
print(json.dumps({"impl": "torch eager fp32", "device": torch.cuda.get_device_name(), "torch": torch.__version__,
                  "L": L, "C": C, "B": a.B, "T": a.T, "msPerStep": ms, "tokensPerSec": a.B * a.T * 1000 / ms,
                  "peakBytes": torch.cuda.max_memory_allocated(), "lastLoss": loss.item()}))
