# torch's causal attention in fp32 on the GPU at the shapes kernels/attention/attention.bench.ts measures on
# hardware adapters: scaled_dot_product_attention (forward, forward+backward) and the naive materialised version,
# timed with CUDA events. The baseline for our flash attention (its target: forward+backward at least as fast as SDPA).
import json, math, sys
import torch
import torch.nn.functional as F

assert torch.cuda.is_available(), "no CUDA device"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
B, NH, HS = 8, 12, 64


def timed(fn, reps=10):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2]


def naive(q, k, v):
    T = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    att = att.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool, device=q.device), 1), float("-inf"))
    return att.softmax(-1) @ v


rows = []
for T in (1024, 2048, 4096):
    q, k, v = [torch.randn(B, NH, T, HS, device="cuda", requires_grad=True) for _ in range(3)]
    g = torch.randn(B, NH, T, HS, device="cuda")
    flops = 4 * B * NH * HS * T * (T + 1) / 2
    sdpa = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)  # noqa: E731
    impls = (("sdpa", sdpa), ("naive", lambda: naive(q, k, v)))
    for name, f in impls:
        if name == "naive" and T > 2048:
            continue  # its T×T buffers grow past what is worth allocating
        fwd = timed(lambda: f())
        fb = timed(lambda: torch.autograd.grad(f(), (q, k, v), g))
        rows.append({"impl": f"torch {name} fp32", "T": T, "fwdMs": fwd, "fwdBwdMs": fb,
                     "fwdGflops": flops / fwd / 1e6, "fwdBwdGflops": 3.5 * flops / fb / 1e6})
        print(f"torch {name} T={T}: forward {fwd:.3f} ms, forward+backward {fb:.3f} ms", file=sys.stderr)
meta = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "B": B, "NH": NH, "HS": HS}
json.dump({**meta, "rows": rows}, sys.stdout, indent=1)
