"""run_cuda.py — the CUDA build tests that need no GPU (see CMakeLists.txt here).

    run_cuda.py CASE --driver cuda_kernels --work DIR MODEL.pml

Each case runs the real code generator and NVRTC through tests/cuda/cuda_kernels.c
with PML_CACHE_DIR pointing into DIR (never the user's cache), and fails with a
message saying what was expected."""
import argparse
import os
import re
import shutil
import subprocess
import sys

ARCHS = "sm_80,sm_90,compute_90"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(args, env_extra=None, expect_rc=0):
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run([ARGS.driver] + args, capture_output=True, text=True, env=env, timeout=600)
    print("$ cuda_kernels " + " ".join(args))
    print(p.stdout + p.stderr)
    if p.returncode != expect_rc:
        fail("exit %d, expected %d" % (p.returncode, expect_rc))
    return p.stdout, p.stderr


def cache_counts(out):
    m = re.search(r"cache: (\d+) hits, (\d+) misses, (\d+) stores, (\d+) rejected", out)
    if not m:
        fail("no cache line in the output")
    return tuple(int(x) for x in m.groups())


def entries(cache):
    d = os.path.join(cache, "kernels")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".bin"))


def case_compile(cache):
    """Every kernel compiles for every target; a second build takes all from the cache."""
    archs = ARGS.archs.split(",")
    out, _ = run(["--archs", ARGS.archs, ARGS.model], {"PML_CACHE_DIR": cache})
    m = re.search(r": (\d+) kernels, (\d+) functions", out)
    if not m or int(m.group(1)) == 0:
        fail("no kernels rendered")
    for arch in archs:
        if not re.search(r": %s: compiled in \d+ ms, [1-9]\d* bytes" % arch, out):
            fail("%s was not compiled" % arch)
    if cache_counts(out)[:3] != (0, len(archs), len(archs)):
        fail("a cold cache should miss and store once per target")
    out, _ = run(["--archs", ARGS.archs, ARGS.model], {"PML_CACHE_DIR": cache})
    if cache_counts(out) != (len(archs), 0, 0, 0) or "compiled in" in out:
        fail("the second build should take every target from the cache")


def case_codegen(cache):
    """The code generator alone renders every kernel (the sanitizer build's check: NVRTC,
    not instrumented, would be nearly all of its time, and the normal build compiles)."""
    out, _ = run(["--no-build", ARGS.model])
    m = re.search(r": (\d+) kernels, (\d+) functions, (\d+) lines", out)
    if not m or int(m.group(1)) == 0 or int(m.group(3)) == 0:
        fail("no kernels rendered")


def case_cache_corrupt_entry_ignored(cache):
    """A damaged entry, or one holding another key, is ignored and rewritten; PML_CACHE=0
    compiles past a good one."""
    run(["--archs", "sm_80,sm_90", ARGS.model], {"PML_CACHE_DIR": cache})
    files = entries(cache)
    if len(files) != 2:
        fail("expected two cache entries, found %d" % len(files))
    by_arch = {}
    for f in files:
        with open(f, "rb") as fh:
            by_arch["sm_80" if b"\narch sm_80\n" in fh.read() else "sm_90"] = f
    with open(by_arch["sm_80"], "r+b") as fh:  # flip the last byte of the CUBIN
        fh.seek(-1, os.SEEK_END)
        b = fh.read(1)
        fh.seek(-1, os.SEEK_END)
        fh.write(bytes([b[0] ^ 0xFF]))
    out, _ = run(["--archs", "sm_80", ARGS.model], {"PML_CACHE_DIR": cache})
    if cache_counts(out) != (0, 1, 1, 1) or "sm_80: compiled" not in out:
        fail("a damaged entry must be rejected and the kernel compiled again")
    out, _ = run(["--archs", "sm_80", ARGS.model], {"PML_CACHE_DIR": cache})
    if cache_counts(out) != (1, 0, 0, 0):
        fail("the rewritten entry should hit")
    out, _ = run(["--archs", "sm_80", ARGS.model], {"PML_CACHE_DIR": cache, "PML_CACHE": "0"})
    if cache_counts(out) != (0, 0, 0, 0) or "compiled in" not in out:
        fail("PML_CACHE=0 should compile without the cache")
    # An intact entry of another key at this key's place (what a hash collision
    # would look like) is a miss, not the other kernel.
    shutil.copyfile(by_arch["sm_80"], by_arch["sm_90"])
    out, _ = run(["--archs", "sm_90", ARGS.model], {"PML_CACHE_DIR": cache})
    if cache_counts(out) != (0, 1, 1, 1) or "sm_90: compiled" not in out:
        fail("an entry holding another key must be rejected")
    with open(by_arch["sm_80"], "r+b") as fh:  # truncated
        fh.truncate(20)
    out, _ = run(["--archs", "sm_80", ARGS.model], {"PML_CACHE_DIR": cache})
    if cache_counts(out)[3] != 1:
        fail("a truncated entry must be rejected")


def case_deterministic_codegen(cache):
    """Two runs render byte-identical CUDA C."""
    a, b = os.path.join(ARGS.work, "a.cu"), os.path.join(ARGS.work, "b.cu")
    run(["--no-build", "--dump", a, ARGS.model])
    run(["--no-build", "--dump", b, ARGS.model])
    with open(a) as fa, open(b) as fb:
        ta, tb = fa.read(), fb.read()
    if ta != tb or 'extern "C" __global__' not in ta:
        fail("the generated code differs between runs (or is empty)")
    if "#include" in ta:
        fail("the generated code must not #include anything")


def case_error_points_at_source(cache):
    """An NVRTC error is reported at the .pml source of the op that wrote the line;
    a missing NVRTC is a clear error."""
    _, err = run(["--archs", "sm_80", "--break-line", ARGS.model], {"PML_CACHE": "0"}, expect_rc=1)
    if not re.search(r"\.pml:\d+:\d+: error: CUDA C \(sm_80, generated line \d+\): .*pml_not_defined", err):
        fail("the compile error should point at a .pml file:line:col")
    _, err = run(["--archs", "sm_80", ARGS.model], {"PML_CACHE": "0", "PML_NVRTC": "/nonexistent/libnvrtc.so"},
                 expect_rc=1)
    if "cannot build CUDA kernels: NVRTC (the CUDA C compiler library) could not be loaded" not in err:
        fail("a missing NVRTC should be a clear error")


def case_attention_switch(cache):
    """Attention runs on the fused kernels by default (PML_CUDA_ATTENTION=kernel too),
    except where they do not fit the head dim (129 in attention_shapes.pml: written out
    as matmuls and a softmax), with dropout too; PML_CUDA_ATTENTION=expand writes every attention out;
    another value is an error at the attention."""
    def kernels(env):
        dump = os.path.join(ARGS.work, "a.cu")
        run(["--no-build", "--dump", dump, ARGS.model], env)
        with open(dump) as f:
            text = f.read()
        calls = re.findall(r"^  pml_att_(fwd|bwd_kv|bwd_q)<(\d+),", text, re.M)
        return len(calls), {int(d) for _, d in calls}
    n, dims = kernels({})
    if n == 0 or 129 in dims or dims != {2, 8, 16, 64, 100, 128}:
        fail("by default every attention but the one of head dim 129 runs on the kernels, not %s" % sorted(dims))
    # attention_qkv's calls name the layout (heads) as their last template argument
    with open(os.path.join(ARGS.work, "a.cu")) as f:
        packed = set(re.findall(r"^  pml_att_fwd<(\d+),[^>]*, (\d+)>\(", f.read(), re.M))
    if not {("64", "3"), ("16", "2")} <= packed or any(d == "129" for d, _ in packed):
        fail("attention_qkv's heads of 64 (3) and 16 (2) run on the kernels from packed rows, not %s" % sorted(packed))
    # dropout on the weights: the kernels draw the mask (DROP, then the key, the threshold
    # and the scale after the launch's seed) in the forward launch and both backward ones
    with open(os.path.join(ARGS.work, "a.cu")) as f:
        drawn = set(re.findall(r"^  pml_att_(fwd|bwd_kv|bwd_q)<(\d+),[^>]*, true>\(.*pml_att_drop\{seed, ", f.read(),
                               re.M))
    if drawn != {(k, d) for k in ("fwd", "bwd_kv", "bwd_q") for d in ("16", "64")}:
        fail("attention with dropout (head dims 16 and 64) runs on the kernels, which draw the mask: %s" % sorted(drawn))
    if kernels({"PML_CUDA_ATTENTION": "kernel"})[0] != n:
        fail("PML_CUDA_ATTENTION=kernel is the default")
    if kernels({"PML_CUDA_ATTENTION": "expand"})[0] != 0:
        fail("PML_CUDA_ATTENTION=expand leaves no attention kernel")
    _, err = run(["--no-build", ARGS.model], {"PML_CUDA_ATTENTION": "fused"}, expect_rc=1)
    if not re.search(r"\.pml:\d+:\d+: error: PML_CUDA_ATTENTION=fused: write 'kernel'", err):
        fail("a bad PML_CUDA_ATTENTION should be an error at the attention")


def case_tensor_cores(cache):
    """With 16-bit operands (--precision bf16 or f16) every attention that runs on the
    kernels runs its forward on the tensor cores (pml_att_fwd_tc), and its backward too
    (statistics on pml_att_fwd_tc, pml_att_bwd_kv_tc, pml_att_bwd_q_tc), at every head dim
    the kernels take; f16 operands are passed as pml_att_f16 (the kernels' f16 type: its
    forward's products are mma's f16 form). All compile for --archs
    (sm_80, the tensor-core instruction's first target; "none": codegen only)."""
    dump = os.path.join(ARGS.work, "a.cu")
    archs = [] if ARGS.archs == "none" else ARGS.archs.split(",")
    out, _ = run((["--archs", ",".join(archs)] if archs else ["--no-build"]) +
                 ["--set", "precision=" + ARGS.precision, "--dump", dump, ARGS.model], {"PML_CACHE_DIR": cache})
    for arch in archs:
        if not re.search(r": %s: (compiled in \d+ ms|from the cache), [1-9]\d* bytes" % arch, out):
            fail("%s was not compiled" % arch)
    with open(dump) as f:
        calls = re.findall(r"^  (pml_att_\w+)<(\d+),[^>]*>\((.*)\);$", f.read(), re.M)
    dims = {}
    for name, d, args in calls:
        dims.setdefault(name, set()).add(int(d))
        q = args.split(",")[0]
        if q.startswith("(const pml_att_f16 *)") != (ARGS.precision == "f16"):
            fail("%s<%s> takes q as %s: want f16 operands as pml_att_f16 exactly when precision is f16" % (name, d, q))
    want = {"pml_att_fwd_tc": {2, 8, 16, 64, 100, 128}, "pml_att_bwd_kv_tc": {2, 8, 16, 64, 100, 128},
            "pml_att_bwd_q_tc": {2, 8, 16, 64, 100, 128}}
    if dims != want:
        fail("%s attention's launches by head dim: want %s, not %s" % (ARGS.precision, want, dims))

def case_f16(cache):
    """precision = f16 builds for the GPU: its kernels compile, the loss scale is the GPU
    code's variable pml_loss_scale, and attention runs on the fused kernels' tensor-core
    forward (case tensor_cores checks every launch)."""
    dump = os.path.join(ARGS.work, "a.cu")
    out, _ = run(["--archs", "sm_80", "--set", "precision=f16", "--dump", dump, ARGS.model], {"PML_CACHE_DIR": cache})
    if not re.search(r": sm_80: (compiled in \d+ ms|from the cache), [1-9]\d* bytes", out):
        fail("f16's kernels did not compile")
    with open(dump) as f:
        text = f.read()
    if "__device__ float pml_loss_scale" not in text:
        fail("an f16 plan declares pml_loss_scale")
    if not re.search(r"^  pml_att_fwd_tc<.*\(const pml_att_f16 \*\)a", text, re.M):
        fail("an f16 plan runs attention on the tensor cores, its operands f16")
    if "pml_f2h(" not in text:
        fail("an f16 plan's kernels store f16")


# The most a fused attention kernel may spill (bytes of local memory stored): a few
# registers' worth, as two of them do today (docs/design.md, "The tensor-core backward
# past head dim 64"); more means a change has outgrown a thread's 255 registers.
ATT_SPILL_MAX = 16


def case_registers(cache):
    """The fused attention kernels of --precision's plan fit a thread's registers and the
    static shared memory: ptxas (nvcc --nvcc, -Xptxas -v) on the code generator's CUDA C,
    its other kernels left out, for each of --archs; every attention kernel spills at most
    ATT_SPILL_MAX bytes. No GPU needed: ptxas says what a GPU would have to run. Skipped
    (77) where --nvcc is missing: a build carried to a machine without the toolkit."""
    if not os.access(ARGS.nvcc, os.X_OK):
        print("SKIP: no nvcc at " + ARGS.nvcc)
        sys.exit(77)
    dump = os.path.join(ARGS.work, "a.cu")
    run(["--no-build", "--set", "precision=" + ARGS.precision, "--dump", dump, ARGS.model],
        {"PML_CACHE_DIR": cache})
    with open(dump) as f:
        text = f.read()
    kernel = re.compile(r'^extern "C" __global__ void __launch_bounds__\(256\) (pml_[0-9a-f]+)\(.*?\n}\n', re.M | re.S)
    calls = {}
    for m in kernel.finditer(text):
        call = re.search(r"^  (pml_att_\w+<[^>]*>)", m.group(0), re.M)
        if call:
            calls[m.group(1)] = call.group(1)
    if not calls:
        fail("no attention kernels in the dump")
    src = os.path.join(ARGS.work, "attention.cu")
    with open(src, "w") as f:  # the text with only the attention kernels
        f.write(kernel.sub(lambda m: m.group(0) if m.group(1) in calls else "", text))
    worst = {}
    for arch in ARGS.archs.split(","):
        p = subprocess.run([ARGS.nvcc, "-cubin", "-arch=" + arch, "-Xptxas", "-v", "-w", "-o",
                            os.path.join(ARGS.work, arch + ".cubin"), src], capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            print(p.stdout + p.stderr)
            fail("nvcc could not compile the attention kernels for " + arch)
        name, seen, spill = None, 0, 0
        for line in (p.stdout + p.stderr).splitlines():
            m = re.search(r"Compiling entry function '(\w+)'", line)
            if m:
                name, spill = m.group(1), 0
            m = re.search(r"(\d+) bytes spill stores", line)
            if m and name in calls:
                spill = int(m.group(1))
            m = re.search(r"Used (\d+) registers.*?(\d+) bytes smem", line)
            if m and name in calls:
                seen += 1
                regs, smem = int(m.group(1)), int(m.group(2))
                print("%s %s: %d registers, %d bytes of shared memory, %d bytes spilled" %
                      (arch, calls[name], regs, smem, spill))
                worst[arch] = max(worst.get(arch, (0, 0, 0)), (spill, regs, smem))
                if spill > ATT_SPILL_MAX:
                    fail("%s spills %d bytes on %s (at most %d)" % (calls[name], spill, arch, ATT_SPILL_MAX))
        if seen != len(calls):
            fail("ptxas reported %d of the %d attention kernels for %s" % (seen, len(calls), arch))
    for arch, (spill, regs, smem) in sorted(worst.items()):
        print("%s: the most spilled %d bytes (%d registers, %d bytes of shared memory)" % (arch, spill, regs, smem))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("case")
    ap.add_argument("--driver", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--archs", default=ARCHS, help="compile: the targets (default: %(default)s)")
    ap.add_argument("--precision", default="bf16",
                    help="tensor_cores, registers: the plan's precision (default: %(default)s)")
    ap.add_argument("--nvcc", help="registers: the CUDA toolkit's nvcc")
    ap.add_argument("model")
    ARGS = ap.parse_args()
    shutil.rmtree(ARGS.work, ignore_errors=True)
    os.makedirs(ARGS.work)
    globals()["case_" + ARGS.case](os.path.join(ARGS.work, "cache"))
    print("ok")
