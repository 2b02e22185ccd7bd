"""COCO RLE strings written by pycocotools.mask.encode (2.0.11) for fixed 0/1 masks (row-major bits)."""

VECTORS = [
    {"size": [5, 7], "counts": "23501OKO212OL", "area": 12, "bits": "00101000010010101011010000011001000"},
    {
        "size": [12, 9],
        "counts": "651L001020O000N00030M10O0001000O000051KO00;0F002ON13OM1000",
        "area": 42,
        "bits": "010010001000010001011000011000110001000010000010101011101111010100000010"
        "101111001100000010111111000000000101",
    },
]
