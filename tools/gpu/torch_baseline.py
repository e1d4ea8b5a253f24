# torch's strict-fp32 matmul (TF32 off) at the shapes kernels/matmul/matmul.bench.ts measures on hardware
# adapters, timed with CUDA events on the same GPU: the baseline our WGSL matmul is compared with.
import json, sys
import torch

assert torch.cuda.is_available(), "no CUDA device"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")

SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048), (4096, 4096, 4096),
          (8192, 768, 2304), (8192, 768, 3072), (8192, 3072, 768), (8192, 768, 50304)]

rows = []
for (M, K, N) in SHAPES:
    a = torch.rand(M, K, device="cuda") * 2 - 1
    b = torch.rand(K, N, device="cuda") * 2 - 1
    for _ in range(3):
        c = a @ b
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); c = a @ b; e.record(); torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    ms = times[len(times) // 2]
    rows.append({"shape": f"M={M} K={K} N={N}", "ms": ms, "tflops": 2 * M * N * K / (ms * 1e9)})
    print(f"torch fp32 M={M} K={K} N={N}: {ms:.3f} ms {rows[-1]['tflops']:.2f} TFLOP/s", file=sys.stderr)
json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, sys.stdout, indent=1)
