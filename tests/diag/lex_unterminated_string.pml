import "nn
const D = 4
