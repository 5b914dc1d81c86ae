#!/usr/bin/env python3
"""ort_bench.py MODEL.onnx X.npy THREADS — ONNX Runtime's latency for one call on the
rows of X (as many as the model's batch): one warm-up call, then calls for at least one
second; prints "median p90 p99" in milliseconds. One intra-op pool of THREADS threads,
no inter-op parallelism, all graph optimizations: how a serving engineer runs it."""
import sys
import time

import numpy as np
import onnxruntime as ort

model, xpath, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
inp = s.get_inputs()[0]
x = np.load(xpath)[: inp.shape[0]]
feed = {inp.name: x}
s.run(None, feed)
lat = []
start = time.perf_counter()
while len(lat) < 5 or time.perf_counter() - start < 1.0:
    t = time.perf_counter()
    s.run(None, feed)
    lat.append(time.perf_counter() - t)
lat.sort()
pick = lambda q: 1e3 * lat[min(len(lat) - 1, int(q * (len(lat) - 1)))]  # noqa: E731
print(f"{pick(0.5):.4f} {pick(0.9):.4f} {pick(0.99):.4f}")
