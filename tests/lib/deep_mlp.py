"""deep_mlp — the residual MLP several runtime tests train (stem, layers.N, norm, head;
32 features, 4 classes): the freeze tests and the ranks tests write it with their own
placement, depth, optimizer and train-block lines."""

SOURCE = """\
import "nn"
fn residual(x, hidden) {{ return x + mlp(layernorm(x) as norm, hidden) as mlp }}
model deep(x: f32[B, 32]) -> f32[B, 4] {{
    place = auto({place})
    h = gelu(linear(x, 48) as stem)
    repeat {layers} {{ h = residual(h, 96) as layers }}
    return linear(layernorm(h) as norm, 4) as head
}}
train deep {{
    data = classes(features = 32, classes = 4)
    loss = cross_entropy
    optimizer = {optimizer}
    batch = 64, microbatches = 4
{extra}}}
"""


def write(path, place, layers, optimizer, lines):
    """Writes the model placed by `place` (what `auto(...)` takes) with `layers` residual
    layers and the train block's extra `lines` (empty ones left out) to `path`."""
    with open(path, "w") as f:
        f.write(SOURCE.format(place=place, layers=layers, optimizer=optimizer,
                              extra="".join(f"    {line}\n" for line in lines if line)))
    return path
