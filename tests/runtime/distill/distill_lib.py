"""distill_lib.py — what the distillation tests against PyTorch share: the teacher's and
student's train blocks, the KD loss in PyTorch, training PyTorch's twin of a PML run and
comparing them, `pmlc infer` against PyTorch, and failed checks counted and reported. Importing it without Debian's torch exits 77
(ctest: skipped), through parity_lib."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "parity"))
from parity_lib import load_safetensors, np, run, torch  # noqa: E402  (exits 77 without torch)

F = torch.nn.functional

TEACHER_TRAIN = """train teacher {
    data = classes(features = 16, classes = 5, seed = 3)
    loss = cross_entropy
    optimizer = adamw(lr = 1e-2)
    batch = 64
    steps = 40
}
"""
STUDENT_TRAIN = """train student {{
    data = classes(features = 16, classes = 5, seed = 3)
    loss = cross_entropy
    optimizer = {opt}
    batch = 32, microbatches = 4
    schedule = 1f1b
    steps = {steps}
}}
"""
failures = 0


def fail(msg):
    global failures
    failures += 1
    print("FAIL:", msg)


def finish(what):
    print(f"{what}: {failures} failed")
    sys.exit(1 if failures else 0)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def kd_loss(s, t, y, T, alpha):
    """alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)."""
    kl = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), log_target=True, reduction="batchmean")
    return alpha * T * T * kl + (1 - alpha) * F.cross_entropy(s, y)


def torch_optimizer(spec, params):
    """PyTorch's twin of the optimizers the tests use: sgd(lr = 0.5), adamw(lr = 1e-2, ...)."""
    if spec.startswith("sgd"):
        return torch.optim.SGD(params, lr=0.5)
    wd = 0.0 if "weight_decay = 0.0" in spec else 0.01
    return torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)


def torch_train(init, opt_spec, data, steps, loss_of):
    """Trains PyTorch parameters made from `init` (name -> array) on PML's batches
    (DATA/x_S.npy, y_S.npy) with loss_of(params, x, y). Returns (params, losses)."""
    params = {k: torch.nn.Parameter(torch.tensor(v)) for k, v in init.items()}
    opt = torch_optimizer(opt_spec, params.values())
    losses = []
    for s in range(steps):
        x = torch.tensor(np.load(f"{data}/x_{s}.npy"))
        y = torch.tensor(np.load(f"{data}/y_{s}.npy")).long()
        loss = loss_of(params, x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return params, losses


def worst_differences(pml_losses, torch_losses, final, params):
    """The largest relative differences of the losses and of the final weights."""
    worst_l = max(abs(a - b) / abs(b) for a, b in zip(pml_losses, torch_losses))
    worst_w = max(float(np.linalg.norm(final[n] - p.detach().numpy()) / np.linalg.norm(p.detach().numpy()))
                  for n, p in params.items())
    return worst_l, worst_w


def check_infer(pmlc, program, ckpt, x_path, out_path, forward):
    """`pmlc infer PROGRAM --weights CKPT` on x gives forward(weights of CKPT, x)."""
    run(pmlc, "infer", program, "--weights", ckpt, "--input", x_path, "--output", out_path)
    weights = {k: torch.tensor(v) for k, v in load_safetensors(f"{ckpt}/model.safetensors").items()}
    with torch.no_grad():
        want = forward(weights, torch.tensor(np.load(x_path))).numpy()
    got = np.load(out_path)
    if got.shape != want.shape or np.abs(got - want).max() > 1e-4 * (1 + np.abs(want).max()):
        fail(f"pmlc infer of the distilled student: largest difference {np.abs(got - want).max():.2e}")
