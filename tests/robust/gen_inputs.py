#!/usr/bin/env python3
"""gen_inputs.py — hostile inputs for the "never a crash" tests, made at test time.

Each case is a function returning the bytes of one .pml file. Every case is an invalid
program: `pmlc check` must report it with `error:` and exit 1 — no signal, no hang, no
sanitizer report. Random inputs use fixed seeds so a failure reproduces.

    gen_inputs.py --list              # case names, one per line (read by CMake)
    gen_inputs.py --write DIR [NAME]  # write DIR/NAME.pml for one case or all
"""
import argparse
import os
import random

MODEL_HEAD = b"model m(x: f32[B, 16]) -> f32[B, 16] {\n"


def model(body):
    """A model whose body is `body`, with nothing else wrong."""
    return MODEL_HEAD + body + b"\n    return x\n}\n"


def random_bytes(seed, n=4096):
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def random_ascii(seed, n=4096):
    """Printable ASCII and newlines: passes the UTF-8 check and reaches the scanner."""
    rng = random.Random(seed)
    alphabet = bytes(range(0x20, 0x7f)) + b"\n" * 8
    return bytes(rng.choice(alphabet) for _ in range(n))


def random_tokens(seed, n=2000):
    """Plausible tokens in a random order: gets deeper into the parser than bytes do."""
    rng = random.Random(seed)
    toks = ["model", "fn", "train", "param", "return", "repeat", "for", "in", "if", "else",
            "stage", "place", "freeze", "after", "import", "const", "as", "(", ")", "[", "]",
            "{", "}", ",", ":", "=", "->", "@", "+", "-", "*", "/", "..", "\n", ";", "x", "h",
            "f32", "i32", "B", "T", "1", "0", "3e-4", '"nn"', "linear", "relu", "cuda:0", "**"]
    return " ".join(rng.choice(toks) for _ in range(n)).encode()


# Each case: name -> bytes of the file. Names become ctest names `robust.NAME`.
CASES = {
    "empty_file": lambda: b"",
    "random_bytes_seed1": lambda: random_bytes(1),
    "random_bytes_seed2": lambda: random_bytes(2),
    "random_bytes_seed3": lambda: random_bytes(3),
    "random_ascii_seed1": lambda: random_ascii(1),
    "random_ascii_seed2": lambda: random_ascii(2),
    "random_tokens_seed1": lambda: random_tokens(1),
    "random_tokens_seed2": lambda: random_tokens(2),
    "nul_bytes": lambda: b"const a = 1\n\0\0\0const b\0 = 2\n",
    "invalid_utf8": lambda: b"# caf\xc3\n const s = \"\xff\xfe\x80 bad\"\nconst \xe2\x82 = 1\n",
    "non_ascii_identifier": lambda: "const caf\u00e9 = 1\n".encode(),
    "unterminated_string": lambda: b'import "nn\nconst a = 1\n',
    "unterminated_comment": lambda: b"const a = 1\n/* this comment never ends\nconst b = 2\n",
    "deep_parens": lambda: b"const a = " + b"(" * 100000 + b"1" + b")" * 100000 + b"\n",
    "deep_parens_unclosed": lambda: b"const a = " + b"(" * 100000 + b"\n",
    "deep_brackets": lambda: b"const a = " + b"[" * 100000 + b"1" + b"]" * 100000 + b"\n",
    "deep_braces": lambda: model(b"if true {\n" * 100000 + b"h = x\n" + b"}\n" * 100000),
    "deep_unary_minus": lambda: b"const a = " + b"- " * 100000 + b"1\n",
    "megabyte_identifier": lambda: b"const " + b"a" * (1 << 20) + b" = 1\n",
    "huge_integer": lambda: b"const a = 99999999999999999999999\n",
    "huge_float": lambda: b"const a = 1e999\n",
    "huge_shape": lambda: b"model m(x: f32[1000000000000, 1000000000000]) -> f32[1000000000000, 1000000000000] {\n    return x\n}\n",
    "million_iteration_loop": lambda: (
        b'import "nn"\n'
        b"model m(x: f32[B, 10]) -> f32[B, 10] {\n"
        b"    h = x\n"
        b"    repeat 1000000 { h = tanh(linear(h, 10)) + h }\n"
        b"    return h\n}\n"),
    "loop_over_limit": lambda: model(b"    repeat 1000001 { h = x }"),
    "import_parent_escape": lambda: b'import "../../etc/passwd"\n',
    "import_absolute_path": lambda: b'import "/etc/passwd"\n',
    "long_sum_expression": lambda: model(
        b"    h = " + b" + ".join([b"x"] * 10000) + b" + undefined_name"),
    "long_line_of_errors": lambda: b"const = = = = \n" * 20000,
    # Valid on its own, but the feed would write 16 rows per micro-batch into an input
    # of 4: refused by the check, naming both sizes (never a write past the buffer).
    "a_constant_batch_dim_that_contradicts_microbatches_is_refused": lambda: (
        b'import "nn"\nmodel m(x: f32[4, 16]) -> f32[4, 2] {\n    return linear(x, 2) as head\n}\n'
        b'train m {\n    data = "x.npy"\n    labels = "y.npy"\n    loss = cross_entropy\n'
        b"    optimizer = sgd(lr = 0.1)\n    batch = 32, microbatches = 2\n}\n"),
}


def write(folder, name):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name + ".pml")
    with open(path, "wb") as f:
        f.write(CASES[name]())
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--write", metavar="DIR")
    ap.add_argument("name", nargs="?")
    args = ap.parse_args()
    if args.list:
        print("\n".join(CASES))
    elif args.write:
        for name in [args.name] if args.name else CASES:
            print(write(args.write, name))
    else:
        ap.error("give --list or --write DIR")


if __name__ == "__main__":
    main()
