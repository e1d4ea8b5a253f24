#!/usr/bin/python3
"""GPT-2 in PyTorch, written out (no scaled_dot_product_attention: torch 1.13), as an independent reference for
wgpt's model and trainer (llm.c's test_gpt2 idea). Reads an llm.c model file (fp32, version 3), runs one batch,
and writes a debug state as safetensors: tokens, targets, logits, loss, the gradient of every parameter (llm.c
names), and the losses of `--steps` AdamW steps on that batch (clipping at global norm 1.0 the way llm.c does).

  /usr/bin/python3 tools/reference/gpt2_reference.py --model m.bin --tokens 1,2,3,... --B 2 --T 8 \
      --out state.safetensors
"""
import argparse, json, math, struct, sys
import torch
import torch.nn.functional as F

NAMES = ["wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
         "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"]
DECAY = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}  # matrices decay; biases and norms do not


def read_llmc(path):
    raw = open(path, "rb").read()
    h = struct.unpack("<256i", raw[:1024])
    if h[0] != 20240326 or h[1] != 3:
        sys.exit(f"{path}: not an fp32 llm.c model file (magic {h[0]}, version {h[1]})")
    maxT, V, L, NH, C, Vp = h[2], h[3], h[4], h[5], h[6], h[7]
    shapes = [(Vp, C), (maxT, C), (L, C), (L, C), (L, 3 * C, C), (L, 3 * C), (L, C, C), (L, C),
              (L, C), (L, C), (L, 4 * C, C), (L, 4 * C), (L, C, 4 * C), (L, C), (C,), (C,)]
    flat = torch.frombuffer(bytearray(raw[1024:]), dtype=torch.float32)
    params, off = {}, 0
    for name, shape in zip(NAMES, shapes):
        n = math.prod(shape)
        params[name] = flat[off:off + n].view(shape).clone().requires_grad_(True)
        off += n
    assert off == flat.numel(), f"{path}: {flat.numel()} floats, config needs {off}"
    return dict(maxT=maxT, V=V, L=L, NH=NH, C=C, Vp=Vp), params


def layernorm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)  # biased variance, as GPT-2's LayerNorm
    return (x - mean) / torch.sqrt(var + eps) * w + b


def forward(cfg, p, tokens, targets):
    B, T = tokens.shape
    C, NH, L, V = cfg["C"], cfg["NH"], cfg["L"], cfg["V"]
    HS = C // NH
    x = p["wte"][tokens] + p["wpe"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool, device=tokens.device))
    for l in range(L):
        h = layernorm(x, p["ln1w"][l], p["ln1b"][l])
        qkv = h @ p["qkvw"][l].T + p["qkvb"][l]
        q, k, v = qkv.split(C, dim=-1)
        q, k, v = [t.view(B, T, NH, HS).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p["attprojw"][l].T + p["attprojb"][l]
        h = layernorm(x, p["ln2w"][l], p["ln2b"][l])
        h = F.gelu(h @ p["fcw"][l].T + p["fcb"][l], approximate="tanh")
        x = x + h @ p["fcprojw"][l].T + p["fcprojb"][l]
    x = layernorm(x, p["lnfw"], p["lnfb"])
    logits = x @ p["wte"][:V].T  # tied embedding; padded rows V..Vp never predicted
    loss = F.cross_entropy(logits.view(-1, V), targets.view(-1))
    return logits, loss


def write_safetensors(path, tensors, metadata):
    header, off, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    js = json.dumps(header).encode()
    js += b" " * ((8 - (8 + len(js)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)) + js + b"".join(blobs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokens", required=True,
                    help="B*(T+1) comma-separated ids: inputs are [:-1], targets [1:] per row")
    ap.add_argument("--B", type=int, required=True)
    ap.add_argument("--T", type=int, required=True)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg, p = read_llmc(a.model)
    ids = torch.tensor([int(s) for s in a.tokens.split(",")], dtype=torch.long).view(a.B, a.T + 1)
    tokens, targets = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()

    logits, loss = forward(cfg, p, tokens, targets)
    loss.backward()
    out = {"tokens": tokens.float(), "targets": targets.float(), "logits": logits, "loss": loss.reshape(1)}
    for n in NAMES:
        out[f"grad.{n}"] = p[n].grad.clone()

    for t in p.values():
        t.grad = None
    groups = [{"params": [p[n] for n in NAMES if n in DECAY], "weight_decay": 0.1},
              {"params": [p[n] for n in NAMES if n not in DECAY], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for step in range(a.steps):
        opt.zero_grad(set_to_none=True)
        _, l = forward(cfg, p, tokens, targets)
        l.backward()
        norm = torch.sqrt(sum((t.grad ** 2).sum() for t in p.values()))
        if norm > 1.0:  # llm.c's rule: scale = max_norm / norm when the norm exceeds it
            for t in p.values():
                t.grad.mul_(1.0 / norm)
        opt.step()
        losses.append(l.item())
    out["losses"] = torch.tensor(losses)
    write_safetensors(a.out, out, {"config": json.dumps(cfg), "B": str(a.B), "T": str(a.T), "lr": str(a.lr),
                                   "torch": torch.__version__})
    print(f"loss {loss.item():.6f}; {a.steps} steps: " + " ".join(f"{x:.4f}" for x in losses))


if __name__ == "__main__":
    main()
