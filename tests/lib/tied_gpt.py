"""tied_gpt.py — the GPT example with its output projection tied to its token table
(GPT-2's weight tying): `wte` is declared and gathered on the first stage and read
again, transposed, by the last. On several stages that is a weight tied across stages
(docs/language.md)."""

EMBED = "tok = embedding(idx, VOCAB, WIDTH) as wte"
HEAD = "return linear(h, VOCAB, has_bias = false) as lm_head"


def tie(src, place=None):
    """The example's text `src`, tied; `place` ("stages = 2, chunks = 2") replaces its
    `auto(stages = 4)`. Raises ValueError when the example no longer has those lines."""
    if EMBED not in src or HEAD not in src or "place = auto(stages = 4)" not in src:
        raise ValueError("the GPT example no longer declares wte, lm_head and auto(stages = 4) as expected")
    src = src.replace(EMBED, "param wte: [VOCAB, WIDTH] = normal(0.02)\n    tok = gather(wte, idx)")
    src = src.replace(HEAD, "return h @ transpose(wte)")
    return src.replace("place = auto(stages = 4)", f"place = auto({place})") if place else src
