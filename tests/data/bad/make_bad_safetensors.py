#!/usr/bin/env python3
"""Regenerates the corrupt safetensors corpus in this folder (the files are committed; this script
only documents how each was made). Run from this folder: python3 make_bad_safetensors.py"""
import json, struct

def st(header, data=b'', hlen=None, raw_header=None):
    h = raw_header if raw_header is not None else json.dumps(header).encode()
    n = len(h) if hlen is None else hlen
    return struct.pack('<Q', n) + h + data

ok = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
files = {
    'st_empty.safetensors': b'',
    'st_short.safetensors': b'\x10\x00\x00',
    'st_header_past_end.safetensors': st(ok, b'\0' * 8, hlen=4096),
    'st_header_huge.safetensors': st(ok, b'\0' * 8, hlen=1 << 40),
    'st_bad_json.safetensors': st(None, b'', raw_header=b'{"a": {"dtype": "F32", '),
    'st_not_object.safetensors': st(None, b'', raw_header=b'[1, 2, 3]'),
    'st_unknown_dtype.safetensors': st({"a": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}, b'\0' * 2),
    'st_size_mismatch.safetensors': st({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b'\0' * 8),
    'st_offsets_reversed.safetensors': st({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, b'\0' * 8),
    'st_out_of_range.safetensors': st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b'\0' * 8),
    'st_overlap.safetensors': st({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                  "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b'\0' * 12),
    'st_hole.safetensors': st({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                               "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, b'\0' * 12),
    'st_trailing.safetensors': st(ok, b'\0' * 12),
    'st_duplicate.safetensors': st(None, b'\0' * 8, raw_header=b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, '
                                   b'"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}'),
    'st_negative_shape.safetensors': st({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b'\0' * 8),
    'st_shape_overflow.safetensors': st({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}}, b'\0' * 8),
    'st_missing_offsets.safetensors': st({"a": {"dtype": "F32", "shape": [2]}}, b'\0' * 8),
    'st_truncated_data.safetensors': st({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b'\0' * 16)[:-5],
}
for name, data in files.items():
    open(name, 'wb').write(data)
