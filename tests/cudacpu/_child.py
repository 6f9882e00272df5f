"""The helper process of the CUDA CPU path: loads kernel libraries built with ASan/UBSan
(it runs with LD_PRELOAD=libasan.so) and runs launches the test process sends it.

Standard library only. Protocol: 8-byte little-endian length + pickle, both ways, on the
pipe given as fd argv[1] (in) and argv[2] (out); C-level stdout goes to stderr, so a
kernel's printf cannot corrupt it. A sanitizer finding ends this process (the test process
reports it from stderr and starts a new one).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import struct
import sys


class Entry(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("fn", ctypes.c_void_p), ("invoke", ctypes.c_void_p),
                ("signature", ctypes.c_char_p), ("max_threads", ctypes.c_int)]


_C_TYPES = {"b": "1-byte integer", "h": "2-byte integer", "i": "int (4 bytes)", "q": "long long (8 bytes)",
            "f": "float", "d": "double", "p": "pointer", "?": "unsupported type (a struct by value?)"}
# numpy scalar type name -> (signature letter, struct format)
_SCALARS = {"int8": ("b", "<b"), "uint8": ("b", "<B"), "int16": ("h", "<h"), "uint16": ("h", "<H"),
            "int32": ("i", "<i"), "uint32": ("i", "<I"), "int64": ("q", "<q"), "float32": ("f", "<f"),
            "float64": ("d", "<d")}


class Library:
    def __init__(self, path: str, statics: list):
        self.lib = ctypes.CDLL(path)
        lib = self.lib
        lib.cudacpu_entries.restype = ctypes.POINTER(Entry)
        lib.cudacpu_entries.argtypes = [ctypes.POINTER(ctypes.c_int)]
        lib.cudacpu_alloc.restype = ctypes.c_void_p
        lib.cudacpu_alloc.argtypes = [ctypes.c_ulonglong, ctypes.c_ulonglong]
        lib.cudacpu_free.argtypes = [ctypes.c_void_p, ctypes.c_ulonglong]
        lib.cudacpu_launch.restype = ctypes.c_char_p
        lib.cudacpu_launch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint), ctypes.POINTER(ctypes.c_uint),
                                       ctypes.c_ulonglong, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        count = ctypes.c_int()
        table = lib.cudacpu_entries(ctypes.byref(count))
        self.entries = {table[i].name.decode(): (ctypes.addressof(table[i]), table[i].signature.decode())
                        for i in range(count.value)}
        offsets = (ctypes.c_ulonglong * max(1, len(statics)))(*[o % 2**64 for o, _ in statics])
        sizes = (ctypes.c_ulonglong * max(1, len(statics)))(*[s for _, s in statics])
        lib.cudacpu_set_static_shared(offsets, sizes, len(statics))


def _slots(name: str, signature: str, args: list, pointers: list[int]):
    if len(args) != len(signature):
        raise ValueError(f"{name} takes {len(signature)} arguments, the launch passes {len(args)}")
    slots = (ctypes.c_ulonglong * max(1, len(args)))()
    for i, (arg, want) in enumerate(zip(args, signature)):
        if arg[0] in ("p", "null"):
            if want != "p":
                raise TypeError(f"{name}: argument {i} is a pointer (numpy.uint64) but the kernel takes a "
                                f"{_C_TYPES[want]} there")
            slots[i] = pointers[arg[1]] + arg[2] if arg[0] == "p" else 0
            continue
        numpy_type, value = arg
        letter, fmt = _SCALARS.get(numpy_type, ("?", None))
        if letter != want:
            raise TypeError(f"{name}: argument {i} is numpy.{numpy_type} but the kernel takes a {_C_TYPES[want]} "
                            "there (CuPy would pass its bytes unchecked)")
        raw = struct.pack(fmt, value).ljust(8, b"\0")
        slots[i] = struct.unpack("<Q", raw)[0]
    addresses = (ctypes.c_void_p * max(1, len(args)))(
        *[ctypes.addressof(slots) + 8 * i for i in range(len(args))])
    return slots, addresses


def _run(lib: Library, req: dict) -> dict:
    name = req["kernel"]
    if name not in lib.entries:
        return {"error": f"no extern \"C\" __global__ function {name} in the source "
                         f"(it has: {', '.join(sorted(lib.entries)) or 'none'})"}
    entry, signature = lib.entries[name]
    grid = (ctypes.c_uint * 3)(*req["grid"])
    block = (ctypes.c_uint * 3)(*req["block"])
    results = []
    for reverse, poison in req["runs"]:
        pointers = []
        for pad, data in req["regions"]:
            p = lib.lib.cudacpu_alloc(pad, len(data))
            ctypes.memmove(p, data, len(data))
            pointers.append(p)
        try:
            slots, addresses = _slots(name, signature, req["args"], pointers)
            err = lib.lib.cudacpu_launch(entry, grid, block, req["shared"], addresses, reverse, poison)
            if err is not None:
                return {"error": err.decode(errors="replace")}
            results.append([ctypes.string_at(p, len(data)) for p, (_, data) in zip(pointers, req["regions"])])
        except (TypeError, ValueError) as exc:
            return {"error": str(exc)}
        finally:
            for p, (pad, _) in zip(pointers, req["regions"]):
                lib.lib.cudacpu_free(p, pad)
    first = results[0]
    # Kernels whose source declares order-dependent results (float atomics) skip the
    # comparison; both runs still ran under ASan/UBSan.
    for other in results[1:] if req.get("compare", True) else ():
        for index, (a, b) in enumerate(zip(first, other)):
            if a != b:
                at = next(i for i in range(len(a)) if a[i] != b[i])
                return {"mismatch": (index, at)}
    return {"regions": first}


def main() -> None:
    inp = os.fdopen(int(sys.argv[1]), "rb", buffering=0)
    out = os.fdopen(int(sys.argv[2]), "wb", buffering=0)
    os.dup2(2, 1)
    libraries: dict[str, Library] = {}

    def read_exact(n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = inp.read(left)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    while True:
        try:
            (size,) = struct.unpack("<Q", read_exact(8))
            req = pickle.loads(read_exact(size))
        except EOFError:
            return
        lib = libraries.get(req["so"])
        if lib is None:
            lib = libraries[req["so"]] = Library(req["so"], req["statics"])
        resp = pickle.dumps(_run(lib, req))
        out.write(struct.pack("<Q", len(resp)) + resp)


if __name__ == "__main__":
    main()
