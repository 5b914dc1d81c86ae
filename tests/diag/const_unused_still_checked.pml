# Every constant is evaluated, even one nothing uses.
const HEAD_DIM = 128 / 3
const LIMIT = 9223372036854775807 + 1
