"""npy_files — writes the .npy files test runners feed to pmlc (version 1.0, C order,
little-endian), so that runners need no numpy to make their data."""
import struct

# struct format code -> the .npy descr of that type.
DESCR = {"f": "<f4", "d": "<f8", "e": "<f2", "b": "|i1", "B": "|u1", "h": "<i2", "H": "<u2",
         "i": "<i4", "I": "<u4", "q": "<i8", "Q": "<u8"}


def write_npy(path, shape, values, fmt="f"):
    """Writes `values` (flat, C order) with struct code `fmt` as an array of `shape`."""
    dims = "(" + "".join(f"{d}, " for d in shape)[:-2] + ("," if len(shape) == 1 else "") + ")"
    header = f"{{'descr': '{DESCR[fmt]}', 'fortran_order': False, 'shape': {dims}, }}"
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack(f"<{len(values)}{fmt}", *values))
