"""The training step of one enas4d subnet in PyTorch, for `bench_train`'s side-by-side column.

    python3 examples/torch_train_step.py PLAN.json [--batch 64] [--steps 5] [--check CHECK]
        [--device cpu|cuda]

PLAN.json is the subnet's layer plan as `bench_train` writes it (`enas4d::space::Plan`). The
module below is the same all-exits pass as `src/supernet/forward.rs`, written the way a PyTorch
user would write it: stage-causal 1x1 convs as dense convs with masked weights, depthwise convs
per run of stages with one kernel size (5x5 and 3x3 kernels from the 7x7 masters through the
transform matrices), stage-causal SE, per-stage depth gating, batch norm on batch statistics,
final expand, feature mix, dropout and one classifier per exit. A step is forward, the mean of
the exits' label-smoothed cross entropies, backward and an AdamW update, on random images.

With --check (a safetensors file from `bench_train`: weights named as this module's
parameters, images and the crate's logits of every exit), the module first loads those weights,
runs the images with dropout off and reports the largest logit error relative to the largest
|logit| as "check_rel_err"; the timed steps then start from those weights.

On `--device cuda` TF32 is off, so that the check compares float32 with float32, and each timed
step ends with a device synchronisation.

Prints one JSON line: {"ms_per_step", "dense_macs", "threads", "torch", "device"[,
"check_rel_err"]}.
"""

import argparse
import json
import time

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-5


def act(x, name):
    if name == "relu":
        return F.relu(x)
    if name == "hswish":
        return F.hardswish(x)
    if name == "hsigmoid":
        return F.hardsigmoid(x)
    return x


def causal_mask(out_cuts, in_cuts):
    """mask[o, i] = 1 where input channel i belongs to a stage <= output channel o's stage."""
    o, i = out_cuts[-1], in_cuts[-1]
    m = torch.zeros(o, i)
    for s in range(len(out_cuts) - 1):
        m[out_cuts[s] : out_cuts[s + 1], : in_cuts[s + 1]] = 1.0
    return m


def channel_mask(cuts, active):
    """1 on the channels of the stages where the block runs; None when it runs in all."""
    if all(active):
        return None
    m = torch.zeros(cuts[-1])
    for s, a in enumerate(active):
        if a:
            m[cuts[s] : cuts[s + 1]] = 1.0
    return m.view(1, -1, 1, 1)


class ConvBn(nn.Module):
    """Stage-causal 1x1 conv (masked dense weight, no bias) and batch norm."""

    def __init__(self, out_cuts, in_cuts):
        super().__init__()
        o, i = out_cuts[-1], in_cuts[-1]
        self.weight = nn.Parameter(torch.randn(o, i, 1, 1) * (2.0 / i) ** 0.5)
        self.register_buffer("mask", causal_mask(out_cuts, in_cuts).view(o, i, 1, 1))
        self.bn = nn.BatchNorm2d(o, eps=BN_EPS)
        self.macs = int(self.mask.sum().item())
        self.dense = o * i

    def forward(self, x):
        return self.bn(F.conv2d(x, self.weight * self.mask))


class Block(nn.Module):
    def __init__(self, b):
        super().__init__()
        self.b = b
        mid = b["mid_cuts"]
        c = mid[-1]
        self.expand = ConvBn(mid, b["in_cuts"]) if b["expand"] else None
        self.dw = nn.Parameter(torch.randn(c, 7, 7) * (2.0 / 49) ** 0.5)
        self.m25 = nn.Parameter(torch.eye(25))
        self.m9 = nn.Parameter(torch.eye(9))
        self.dw_bn = nn.BatchNorm2d(c, eps=BN_EPS)
        gate = channel_mask(mid, b["active"])
        self.register_buffer("gate", gate if gate is not None else torch.ones(0))
        self.se = None
        if b["se_cuts"] is not None:
            rc = b["se_cuts"]
            r = rc[-1]
            self.se = nn.ParameterDict(
                {
                    "reduce": nn.Parameter(torch.randn(r, c) * (1.0 / c) ** 0.5),
                    "reduce_bias": nn.Parameter(torch.zeros(r)),
                    "expand": nn.Parameter(torch.randn(c, r) * (1.0 / r) ** 0.5),
                    "expand_bias": nn.Parameter(torch.zeros(c)),
                }
            )
            self.register_buffer("se_rmask", causal_mask(rc, mid))
            self.register_buffer("se_emask", causal_mask(mid, rc))
            rg = channel_mask(rc, b["active"])
            self.register_buffer("se_gate", rg.view(1, -1) if rg is not None else torch.ones(0))
        self.project = ConvBn(b["out_cuts"], mid)
        out_gate = channel_mask(b["out_cuts"], b["active"])
        self.register_buffer("out_gate", out_gate if out_gate is not None else torch.ones(0))
        self.residual = b["stride"] == 1 and b["in_cuts"] == b["out_cuts"]

    def kernels(self):
        sizes = set(self.b["kernels"])
        c = self.dw.shape[0]
        k = {7: self.dw}
        if 5 in sizes or 3 in sizes:
            k[5] = (self.dw[:, 1:6, 1:6].reshape(c, 25) @ self.m25.t()).view(c, 5, 5)
        if 3 in sizes:
            k[3] = (k[5][:, 1:4, 1:4].reshape(c, 9) @ self.m9.t()).view(c, 3, 3)
        return k

    def depthwise(self, x):
        cuts, sizes = self.b["mid_cuts"], self.b["kernels"]
        runs = []
        for s, k in enumerate(sizes):
            if runs and runs[-1][0] == k:
                runs[-1][2] = cuts[s + 1]
            else:
                runs.append([k, cuts[s], cuts[s + 1]])
        kernels = self.kernels()
        outs = []
        for k, a, e in runs:
            w = kernels[k][a:e].unsqueeze(1)
            outs.append(F.conv2d(x[:, a:e], w, stride=self.b["stride"], padding=k // 2, groups=e - a))
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)

    def forward(self, x):
        a = self.b["act"]
        gated = self.gate.numel() > 0
        h = x
        if self.expand is not None:
            h = act(self.expand(x), a)
            if gated:
                h = h * self.gate
        h = act(self.dw_bn(self.depthwise(h)), a)
        if gated:
            h = h * self.gate
        if self.se is not None:
            pooled = h.mean((2, 3))
            red = F.relu(F.linear(pooled, self.se["reduce"] * self.se_rmask, self.se["reduce_bias"]))
            if self.se_gate.numel() > 0:
                red = red * self.se_gate
            g = F.hardsigmoid(F.linear(red, self.se["expand"] * self.se_emask, self.se["expand_bias"]))
            h = h * g[:, :, None, None]
        y = self.project(h)
        if self.residual:
            return x + (y * self.out_gate if self.out_gate.numel() > 0 else y)
        return y


class Subnet(nn.Module):
    def __init__(self, plan, dropout=0.1):
        super().__init__()
        self.plan = plan
        c0 = plan["stem_cuts"][-1]
        self.stem = nn.Conv2d(3, c0, 3, stride=2, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(c0, eps=BN_EPS)
        self.blocks = nn.ModuleList(Block(b) for b in plan["blocks"])
        last = plan["blocks"][-1]["out_cuts"] if plan["blocks"] else plan["stem_cuts"]
        self.final_expand = ConvBn(plan["final_cuts"], last)
        fc, mc = plan["final_cuts"], plan["mix_cuts"]
        self.mix = nn.Parameter(torch.randn(mc[-1], fc[-1]) * (1.0 / fc[-1]) ** 0.5)
        self.register_buffer("mix_mask", causal_mask(mc, fc))
        self.heads = nn.ModuleList(nn.Linear(mc[s + 1], plan["classes"]) for s in range(plan["stages"]))
        self.dropout = nn.Dropout(dropout)

    def forward(self, images):
        x = F.hardswish(self.stem_bn(self.stem(images)))
        for b in self.blocks:
            x = b(x)
        pooled = F.hardswish(self.final_expand(x)).mean((2, 3))
        feats = F.hardswish(F.linear(pooled, self.mix * self.mix_mask))
        cuts = self.plan["mix_cuts"]
        return [h(self.dropout(feats[:, : cuts[s + 1]])) for s, h in enumerate(self.heads)]

    def dense_macs(self):
        """Multiply-adds per image that this dense-masked module computes."""
        total = 0
        size = self.plan["resolution"]
        s = (size + 1) // 2
        total += 3 * 9 * self.plan["stem_cuts"][-1] * s * s
        for blk in self.blocks:
            b = blk.b
            n_in, n_out = b["size"] ** 2, ((b["size"] + b["stride"] - 1) // b["stride"]) ** 2
            if blk.expand is not None:
                total += blk.expand.dense * n_in
            cuts = b["mid_cuts"]
            total += sum((cuts[i + 1] - cuts[i]) * k * k for i, k in enumerate(b["kernels"])) * n_out
            if blk.se is not None:
                total += 2 * blk.se["reduce"].numel()
            total += blk.project.dense * n_out
            s = (b["size"] + b["stride"] - 1) // b["stride"]
        total += self.final_expand.dense * s * s
        total += self.mix.numel()
        total += sum(h.weight.numel() for h in self.heads)
        return total


def load_safetensors(path):
    """Every F32 tensor of a safetensors file (no dependency beyond torch)."""
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    body = memoryview(data)[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {t['dtype']}, expected F32")
        a, b = t["data_offsets"]
        out[name] = torch.frombuffer(bytearray(body[a:b]), dtype=torch.float32).reshape(t["shape"])
    return out


def check(net, path, device):
    """Largest |logit - crate's logit| / max |crate's logit| over every exit."""
    tensors = load_safetensors(path)
    images = tensors.pop("images").to(device)
    expected = [tensors.pop(f"logits.{s}") for s in range(len(net.heads))]
    params = dict(net.named_parameters())
    missing = set(params) - set(tensors)
    unknown = set(tensors) - set(params)
    if missing or unknown:
        raise ValueError(f"check file: missing {sorted(missing)}, unknown {sorted(unknown)}")
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value.reshape(params[name].shape))
        p = net.dropout.p
        net.dropout.p = 0.0
        got = [g.cpu() for g in net(images)]
        net.dropout.p = p
    scale = max(e.abs().max().item() for e in expected)
    return max((g - e).abs().max().item() for g, e in zip(got, expected)) / scale


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("plan")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--check")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    with open(args.plan) as f:
        plan = json.load(f)
    torch.manual_seed(7)
    net = Subnet(plan).to(device)
    net.train()
    report = {}
    if args.check:
        report["check_rel_err"] = check(net, args.check, device)
    optim = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    r, classes = plan["resolution"], plan["classes"]
    images = (torch.rand(args.batch, 3, r, r) * 2 - 1).to(device)
    labels = torch.randint(0, classes, (args.batch,)).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else lambda: None
    t0 = time.perf_counter()
    for step in range(args.steps + 2):
        if step == 2:
            sync()
            t0 = time.perf_counter()
        logits = net(images)
        loss = sum(F.cross_entropy(l, labels, label_smoothing=0.1) for l in logits) / len(logits)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
    sync()
    ms = (time.perf_counter() - t0) / args.steps * 1e3
    report.update(
        ms_per_step=ms,
        dense_macs=net.dense_macs(),
        threads=torch.get_num_threads(),
        torch=torch.__version__,
        device=str(device),
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
