# Only declarations stand at the top of a file; the message lists them.
import "nn"
h = 3
