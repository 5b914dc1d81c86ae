#!/usr/bin/env python3
"""ort_run.py — run by the ONNX Runtime interpreter (a venv with onnxruntime, onnx and
numpy): ort_run.py JOBS.json RESULTS.json. Each job {"name", "model", "input", "want"}
checks the model with onnx's full checker, runs it on the rows of the input .npy in calls
of the model's batch size (the last padded with zeros) and compares the outputs with the
.npy `want` (what `pmlc infer` wrote): RESULTS.json maps each name to {"shape_ok",
"error"}, the largest difference over the outputs' largest magnitude (at least 1). Exits
1 on the first model that fails to load, check or run."""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

results = {}
for job in json.load(open(sys.argv[1])):
    model = onnx.load(job["model"])
    onnx.checker.check_model(model, full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(job["model"], opts, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    x = np.load(job["input"])
    mb = i.shape[0]
    outs = []
    for r in range(0, len(x), mb):
        part = x[r:r + mb]
        n = len(part)
        if n < mb:
            part = np.concatenate([part, np.zeros((mb - n,) + part.shape[1:], part.dtype)])
        outs.append(s.run(None, {i.name: part})[0][:n])
    got = np.concatenate(outs).astype(np.float64)
    want = np.load(job["want"]).astype(np.float64)
    shape_ok = got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))
    results[job["name"]] = {"shape_ok": shape_ok, "error": float(np.abs(got - want).max()) / scale if shape_ok else 1e9}
    print("ran", job["model"], "in batches of", mb, "on", x.shape)
json.dump(results, open(sys.argv[2], "w"))
