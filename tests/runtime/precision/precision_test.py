#!/usr/bin/env python3
"""Mixed-precision training on the CPU (docs/language.md, "Precision"), one behaviour
per run: precision_test.py PMLC DUMP_BATCHES HERE BEHAVIOUR, on mixed.pml.

  twin_bf16, twin_f16  PML trains like a PyTorch twin that makes the same casts (the op
                       table of compiler/src/ir/precision.c: every op computes in f32 from
                       its operands as stored and rounds its output to its storage dtype;
                       products read 16-bit copies of the weights and of f32 operands).
                       Step 1's loss (a forward pass from the same weights) agrees to 1e-5
                       relative: the same casts give the same values up to f32 summation
                       order, and it is 50 times nearer the twin's than the f32 twin's, so
                       the casts are really made. Later steps agree to 1e-2 (bf16; f16:
                       2e-3) relative and the final weights to 3e-2 (f16: 1e-2, relative
                       norm): products round the gradients where the twin's casts round
                       each value's gradient, and a weight that an update leaves on the
                       other side of a 16-bit rounding tie moves by one unit in the last
                       place (2^-8 for bf16, 2^-11 for f16) in every forward pass after;
                       such flips accumulate over the 20 steps. The f16 twin scales the
                       loss as PML does (65536, no overflow in these 20 steps).
  differs_from_f32     precision = bf16 and f32 train different weights (they once gave the
                       same bits: the setting was ignored)
  pipelining           in bf16, 2 stages of 4 micro-batches train like 1 stage of 1 (losses
                       to 1e-4, weights to 1e-3: a micro-batch's rows round exactly as the
                       whole batch's, only f32 sums reorder, and a power-of-two micro-batch
                       count scales gradients exactly)
  resume               a bf16 run resumed from a checkpoint equals the straight run, bit for
                       bit (the 16-bit copies are remade from the f32 masters it saves)
  plan_memory          `pmlc plan`: bf16 halves each stage's activation memory (to at most
                       0.55 of f32's: norms' statistics and the loss stay f32) and the bytes
                       sent between stages
  cuda_builds_16_bits  bf16 and f16 build for CUDA (NVRTC compiles their 16-bit kernels;
                       f16's loss scale is a variable of the GPU code, pml_loss_scale)
  f16_overflow         f16's loss scaling: a scale so large that the gradients overflow skips
                       those steps (metrics: skipped, the scale backing off; the weights do
                       not move), then training goes on at the smaller scale and learns
  f16_resume           an f16 checkpoint keeps the scale and its count of good steps: a
                       resumed run scales (and grows the scale) as the straight one, and ends
                       with the same weights bit for bit
  f16_refused          loss_scale fields with another precision are refused, naming f16
  param_dtype          `param w: bf16[...]` in an f32 run: the checkpoint holds w's f32 master,
                       which trains, and readers read a bf16 copy (the plan shows the cast;
                       the weights differ from the same model with an f32 w)
  teacher_precision    a distillation's teacher_precision = bf16 runs the teacher in bf16: the
                       plan shows its 16-bit sends, and the student trains differently than
                       under an f32 teacher"""
import json
import os
import subprocess
import sys
import tempfile

pmlc, dump, here, behaviour = sys.argv[1:5]
pmlc, dump, here = (os.path.abspath(a) for a in (pmlc, dump, here))
sys.path.insert(0, os.path.join(here, "..", "..", "lib"))
from st_files import read_st  # noqa: E402

MODEL = os.path.join(here, "mixed.pml")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def pmlc_run(*args, ok=True):
    r = subprocess.run([pmlc, *args], capture_output=True, text=True, timeout=300)
    if ok and r.returncode:
        sys.exit(f"pmlc {' '.join(args)} failed:\n{r.stderr}")
    return r


def train(tmp, name, *sets, steps=20, program=MODEL, extra=()):
    out = os.path.join(tmp, name)
    args = ["train", program, "--steps", str(steps), "--out", out, "--metrics", out + ".jsonl", "--quiet",
            *extra]
    for s in sets:
        args += ["--set", s]
    pmlc_run(*args)
    losses = [json.loads(line)["loss"] for line in open(out + ".jsonl")] if steps else []
    return losses, out


def weights(out):
    import numpy as np
    h, _, data = read_st(os.path.join(out, "model.safetensors"))
    return {k: np.frombuffer(data[k], dtype=np.float32).reshape(h[k]["shape"]) for k in h}


def twin(half):
    sys.path.insert(0, os.path.join(here, "..", "parity"))
    from parity_lib import np, pml_run, torch  # noqa: E402  (exits 77 without torch)
    torch.set_num_threads(1)
    steps = 20
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "mixed.pml")
        with open(MODEL) as f:
            text = f.read().replace("precision = bf16", f"precision = {half}")
        with open(model, "w") as f:
            f.write(text)
        init, final, pml_losses, data = pml_run(pmlc, dump, model, steps, tmp)
        runs = {}
        for dt in (half, "f32"):
            runs[dt] = twin_train(np, torch, init, data, steps, dt)
    (t16, w16, skips), (t32, _, _) = runs[half], runs["f32"]
    print("step  PML            twin           f32 twin")
    for s in range(steps):
        print(f"{s + 1:4d}  {pml_losses[s]:.9f}  {t16[s]:.9f}  {t32[s]:.9f}")
    rel = [abs(a - b) / abs(b) for a, b in zip(pml_losses, t16)]
    check(rel[0] <= 1e-5, f"step 1: PML's {half} loss is the twin's to 1e-5 (relative difference {rel[0]:.2e})")
    far = abs(pml_losses[0] - t32[0]) / abs(t32[0])
    check(far >= max(1e-6, 50 * rel[0]), f"step 1: PML's {half} loss is 50 times nearer the twin's than the f32 "
          f"twin's ({rel[0]:.2e} against {far:.2e})")
    loss_tol, weight_tol = (1e-2, 3e-2) if half == "bf16" else (2e-3, 1e-2)  # bf16: 8 bits, f16: 11
    worst = max(rel)
    check(worst <= loss_tol, f"every step's loss within {loss_tol} of the twin's (worst {worst:.2e})")
    for name, w in w16.items():
        d = float(np.linalg.norm(final[name] - w) / np.linalg.norm(w))
        print(f"{name}: final weights' relative difference {d:.2e}")
        check(d <= weight_tol, f"{name}: final weights within {weight_tol} of the twin's (relative norm {d:.2e})")
    print(f"largest relative loss difference {worst:.2e}; step 1 {rel[0]:.2e} (f32 twin: {far:.2e}); "
          f"the twin skipped {skips} steps")


def twin_train(np, torch, init, data, steps, half):
    """mixed.pml in PyTorch with PML's casts: R() is a round trip through the 16-bit
    dtype (its backward rounds the gradient too), after each op the table stores in 16
    bits, on each weight (its copy) and each product's f32 operand."""
    dt = {"bf16": torch.bfloat16, "f16": torch.float16}.get(half)
    R = (lambda v: v.to(dt).to(torch.float32)) if dt else (lambda v: v)
    p = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}

    def linear(h, n, out=False):
        y = R(R(h) @ R(p[f"{n}.weight"]).T)  # products: 16-bit operands, f32 sums, 16-bit result
        y = y + R(p[f"{n}.bias"])
        return y if out else R(y)  # the model's output stays f32

    class PmlTanh(torch.autograd.Function):
        """PML's f32 tanh (runtime/src/cpu/math_f32.h: a rational function), op for op, so
        that a GELU rounded once to 16 bits rounds the same value; its gradient 1 - t^2,
        as gelu_tanh_grad takes it."""
        @staticmethod
        def forward(ctx, u):
            c = u.clamp(-7.90531110763549805, 7.90531110763549805)
            x2 = c * c
            pc = (-2.76076847742355e-16, 2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
                  1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03)
            qc = (1.19825839466702e-06, 1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03)
            p_, q_ = torch.full_like(x2, pc[0]), torch.full_like(x2, qc[0])
            for k in pc[1:]:
                p_ = p_ * x2 + k
            for k in qc[1:]:
                q_ = q_ * x2 + k
            t = torch.where(u.abs() < 0.0004, u, (p_ * c) / q_)
            ctx.save_for_backward(t)
            return t

        @staticmethod
        def backward(ctx, g):
            (t,) = ctx.saved_tensors
            return g * (1.0 - t * t)

    def gelu(x):  # stdlib's gelu is one op (gelu_tanh): f32 inside, its result stored in 16 bits
        return R(0.5 * x * (1.0 + PmlTanh.apply(0.7978845608028654 * (x + 0.044715 * x * x * x))))

    def layernorm(x, n):  # the means are reductions: f32
        xc = R(x - x.mean(-1, keepdim=True))
        var = R(xc * xc).mean(-1, keepdim=True)
        y = R(xc * R(torch.rsqrt(R(var + 1e-5))))
        return R(R(y * R(p[f"{n}.weight"])) + R(p[f"{n}.bias"]))

    def model(x):
        h = gelu(linear(x, "fc1"))
        h = layernorm(gelu(linear(h, "fc2")), "norm")
        return linear(h, "head", out=True)

    opt = torch.optim.AdamW(p.values(), lr=3e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses, skips = [], 0
    scale = 65536.0 if half == "f16" else 1.0  # f16: dynamic loss scaling, the train block's defaults
    for s in range(steps):
        x = torch.tensor(np.load(f"{data}/x_{s}.npy"))
        y = torch.tensor(np.load(f"{data}/y_{s}.npy")).long()
        loss = torch.nn.functional.cross_entropy(model(x), y)  # xent and its mean: f32
        opt.zero_grad()
        (loss * scale).backward()
        if all(torch.isfinite(v.grad).all() for v in p.values()):
            for v in p.values():
                v.grad /= scale
            opt.step()
        else:  # an overflow: no update, the scale backs off (never here at 65536)
            skips += 1
            scale /= 2
        losses.append(loss.item())
    return losses, {k: v.detach().numpy() for k, v in p.items()}, skips


def differs_from_f32(tmp):
    _, a = train(tmp, "bf16", steps=5)
    _, b = train(tmp, "f32", "precision=f32", steps=5)
    check(read_st(os.path.join(a, "model.safetensors"))[2] != read_st(os.path.join(b, "model.safetensors"))[2],
          "bf16 and f32 train different weights")


def pipelining(tmp):
    import numpy as np
    one = os.path.join(tmp, "one.pml")
    with open(MODEL) as f, open(one, "w") as g:
        g.write(f.read().replace("stages = 2", "stages = 1"))
    la, a = train(tmp, "piped", steps=10)
    lb, b = train(tmp, "whole", "microbatches=1", steps=10, program=one)
    worst = max(abs(x - y) / abs(y) for x, y in zip(la, lb))
    check(worst <= 1e-4, f"losses of 2x4 and 1x1 within 1e-4 (worst {worst:.2e})")
    wa, wb = weights(a), weights(b)
    for k in wb:
        d = float(np.linalg.norm(wa[k] - wb[k]) / np.linalg.norm(wb[k]))
        print(f"{k}: relative difference {d:.2e}")
        check(d <= 1e-3, f"{k}: 2x4 and 1x1 weights within 1e-3 (relative norm {d:.2e})")
    print(f"largest relative loss difference {worst:.2e}")


def resume(tmp):
    _, straight = train(tmp, "straight", steps=6)
    _, a = train(tmp, "A", steps=3)
    _, b = train(tmp, "B", steps=6, extra=("--resume", a))
    for f in ("model.safetensors", "optimizer.safetensors"):
        check(read_st(os.path.join(straight, f))[2] == read_st(os.path.join(b, f))[2],
              f"{f}: the resumed bf16 run equals the straight one bit for bit")


def plan_memory(tmp):
    plans = {}
    for prec in ("f32", "bf16"):
        r = pmlc_run("plan", "--json", MODEL, "--set", f"precision={prec}")
        plans[prec] = json.loads(r.stdout)
    for s32, s16 in zip(plans["f32"]["stages"], plans["bf16"]["stages"]):
        # What a micro-batch keeps for the backward pass halves; the arena's activation
        # figure also holds the stage's f32 data input (the model's input is f32 data in
        # both plans), so it only falls.
        k32, k16 = s32["activation_bytes"], s16["activation_bytes"]
        check(k16 <= 0.55 * k32, f"stage {s32['index']}: bf16 keeps {k16} B per micro-batch, at most 0.55 of f32's {k32} B")
        a32, a16 = s32["memory"]["activation_bytes"], s16["memory"]["activation_bytes"]
        check(a16 < a32, f"stage {s32['index']}: bf16 activation memory {a16} B below f32's {a32} B")
        for x, y in zip(s32["sends"], s16["sends"]):
            check(y["dtype"] == "bf16" and 2 * y["bytes"] == x["bytes"], f"send {y['name']} is bf16 at half the bytes")
    text = pmlc_run("plan", MODEL).stdout
    check("bf16: f32 master weights" in text and "matmul" in text, "`pmlc plan` shows the op table:\n" + text)


def cuda_builds_16_bits(tmp):
    plan = os.path.join(tmp, "p.plan")
    r = pmlc_run("build", MODEL, "--arch", "sm_80", "-o", plan, ok=False)
    if r.returncode and "NVRTC" in r.stderr:
        print("SKIP: no NVRTC to reach the CUDA code generator")
        sys.exit(77)
    check(r.returncode == 0 and os.path.getsize(plan) > 0,
          f"pmlc build --arch builds bf16's kernels (16-bit storage, f32 math): exit {r.returncode}, {r.stderr}")
    r = pmlc_run("build", MODEL, "--arch", "sm_80", "--set", "precision=f16", "-o", plan + "16", ok=False)
    check(r.returncode == 0 and os.path.getsize(plan + "16") > 0,
          f"pmlc build --arch builds f16's kernels too: exit {r.returncode}, {r.stderr}")
    with open(plan + "16", "rb") as f:
        check(b"pml_loss_scale" in f.read(), "the f16 plan's GPU code holds the loss scale's variable")


def metrics(path):
    return [json.loads(line) for line in open(path) if '"step"' in line]


def f16_overflow(tmp):
    import numpy as np
    sets = ("precision=f16", "loss_scale=1e12", "loss_scale_backoff=1e-4")
    _, init = train(tmp, "init", *sets, steps=0)
    _, two = train(tmp, "two", *sets, steps=2)
    _, out = train(tmp, "all", *sets, steps=20)
    m = metrics(out + ".jsonl")
    print([(r["step"], r["loss_scale"], r["skipped"]) for r in m])
    check([r["skipped"] for r in m[:2]] == [True, True], "the first two steps overflow at 1e12 and 1e8: skipped")
    check(m[0]["grad_norm"] is None, "a skipped step's gradient norm is not finite: null")
    check(abs(m[1]["loss_scale"] - 1e8) <= 1 and abs(m[2]["loss_scale"] - 1e4) <= 1e-3,
          "the scale backs off by loss_scale_backoff after each")
    check(not any(r["skipped"] for r in m[2:]), "from step 3 the gradients fit: no step skipped")
    check(read_st(os.path.join(init, "model.safetensors"))[2] == read_st(os.path.join(two, "model.safetensors"))[2],
          "the skipped steps left the weights as they were")
    check(m[-1]["loss"] < 0.8 * m[2]["loss"], f"training recovers and learns: loss {m[2]['loss']} -> {m[-1]['loss']}")
    w = weights(out)
    check(all(np.isfinite(v).all() for v in w.values()), "the weights are finite")


def f16_resume(tmp):
    sets = ("precision=f16", "loss_scale_growth_interval=2")
    _, straight = train(tmp, "straight", *sets, steps=6)
    _, a = train(tmp, "A", *sets, steps=3)
    _, b = train(tmp, "B", *sets, steps=6, extra=("--resume", a))
    t = json.load(open(os.path.join(a, "trainer.json")))
    check(t.get("loss_scale") == {"scale": 131072, "good_steps": 1},
          f"trainer.json keeps the scale, doubled after 2 good steps, and 1 good step since: {t.get('loss_scale')}")
    ms, mb = metrics(straight + ".jsonl"), metrics(b + ".jsonl")
    check([r["loss_scale"] for r in ms[3:]] == [r["loss_scale"] for r in mb],
          f"the resumed run scales as the straight one: {[r['loss_scale'] for r in ms]} {[r['loss_scale'] for r in mb]}")
    for f in ("model.safetensors", "optimizer.safetensors"):
        check(read_st(os.path.join(straight, f))[2] == read_st(os.path.join(b, f))[2],
              f"{f}: the resumed f16 run equals the straight one bit for bit")


def f16_refused(tmp):
    r = pmlc_run("train", MODEL, "--steps", "1", "--set", "loss_scale=1024", ok=False)
    check(r.returncode != 0 and "'loss_scale' is for precision = f16" in r.stderr,
          f"loss_scale with bf16 is refused: exit {r.returncode}, {r.stderr}")


PARAM_DTYPE = """
model m(x: f32[B, 24]) -> f32[B, 10] {
    param w: DT[10, 24] = kaiming_uniform
    return cast(cast(x, DT) @ transpose(w), f32)
}
train m {
    data = classes(features = 24, classes = 10, seed = 4)
    loss = cross_entropy
    optimizer = sgd(lr = 0.1)
    batch = 16
    steps = 3
}
fn cross_entropy(logits, labels: i32) { return mean(xent(logits, labels)) }
"""


def param_dtype(tmp):
    import numpy as np
    outs = {}
    for dt in ("bf16", "f32"):
        prog = os.path.join(tmp, f"{dt}.pml")
        with open(prog, "w") as f:
            f.write(PARAM_DTYPE.replace("DT", dt))
        _, init = train(tmp, f"init_{dt}", steps=0, program=prog)
        _, outs[dt] = train(tmp, f"out_{dt}", steps=3, program=prog)
        if dt == "bf16":
            h = read_st(os.path.join(outs[dt], "model.safetensors"))[0]
            check(h["w"]["dtype"] == "F32", f"the checkpoint holds w's master in f32: {h['w']}")
            w0, w3 = weights(init)["w"], weights(outs[dt])["w"]
            check(not np.array_equal(w0, w3), "the master trains")
            check(any(pml_bits(v) & 0xffff for v in w3.ravel()), "the master keeps more than bf16's bits")
            text = pmlc_run("plan", prog).stdout
            check("1 cast to 16 bits" in text, "`pmlc plan` shows w's copy:\n" + text)
    check(read_st(os.path.join(outs["bf16"], "model.safetensors"))[2] !=
          read_st(os.path.join(outs["f32"], "model.safetensors"))[2], "a bf16 w trains differently from an f32 one")


def pml_bits(v):
    import numpy as np
    return int(np.float32(v).view(np.uint32))


def teacher_precision(tmp):
    examples = os.path.join(here, "..", "..", "..", "examples")
    for f in ("teacher.pml", "student.pml", "distill.pml"):
        with open(os.path.join(examples, f)) as src, open(os.path.join(tmp, f), "w") as dst:
            dst.write(src.read())
    import shutil
    shutil.copytree(os.path.join(examples, "models"), os.path.join(tmp, "models"))
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        pmlc_run("train", "teacher.pml", "--steps", "2", "--out", "runs/teacher", "--quiet")
        outs = {}
        for tp in ("f32", "bf16"):
            prog = f"d_{tp}.pml"
            with open("distill.pml") as f, open(prog, "w") as g:
                g.write(f.read().replace("alpha = 0.7 }", f"alpha = 0.7, teacher_precision = {tp} }}"))
            pmlc_run("train", prog, "--steps", "2", "--out", f"o_{tp}", "--quiet")
            outs[tp] = read_st(os.path.join(f"o_{tp}", "model.safetensors"))[2]
        text = pmlc_run("plan", "d_bf16.pml").stdout
        check("teacher's forward pass in bf16" in text and "teacher.h  bf16" in text,
              "`pmlc plan` shows the teacher in bf16:\n" + text)
        check(outs["f32"] != outs["bf16"], "a bf16 teacher gives the student different weights than an f32 one")
    finally:
        os.chdir(cwd)


with tempfile.TemporaryDirectory() as tmp:
    if behaviour.startswith("twin_"):
        twin(behaviour[5:])
    else:
        globals()[behaviour](tmp)
print(f"precision {behaviour}: {len(failures)} failed")
sys.exit(1 if failures else 0)
