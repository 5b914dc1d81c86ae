"""check_no_libcuda.py BINARY... — none of the binaries needs libcuda (or the CUDA
runtime) at load time: each must start on a machine without a GPU driver."""
import subprocess
import sys

bad = 0
for path in sys.argv[1:]:
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    needed = [l.split("[", 1)[1].rstrip("]") for l in out.splitlines() if "(NEEDED)" in l]
    wrong = [n for n in needed if n.startswith(("libcuda.", "libcudart.", "libnvrtc.", "libcublas"))]
    print("%s: needs %s" % (path, ", ".join(needed)))
    if wrong:
        print("FAIL: %s links %s" % (path, ", ".join(wrong)))
        bad = 1
sys.exit(bad)
