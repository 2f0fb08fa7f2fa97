"""De-identification profiles: which attributes survive.

``vindr`` keeps exactly the 25 attributes of the VinDr-PCXR data descriptor, Supplementary Table 3 (the same
list as VinDr-CXR Table 4); every other element, private tags, sequences, overlays and curves included, is
removed. The outputs also carry (0012,0062) *Patient Identity Removed* = YES and (0012,0063)
*De-identification Method* naming the profile (PS3.15 Annex E, E.1.1 item 6).
"""

from __future__ import annotations

from pydicom.tag import Tag

__all__ = ["PROFILES", "VINDR_KEEP"]

#: VinDr-PCXR data descriptor, Table 3 ("The list of DICOM tags that were retained"), in the seed's order.
VINDR_KEEP: tuple[tuple[int, str], ...] = (
    (Tag(0x0010, 0x0040), "PatientSex"),
    (Tag(0x0010, 0x1010), "PatientAge"),
    (Tag(0x0010, 0x1020), "PatientSize"),
    (Tag(0x0010, 0x1030), "PatientWeight"),
    (Tag(0x0028, 0x0010), "Rows"),
    (Tag(0x0028, 0x0011), "Columns"),
    (Tag(0x0028, 0x0030), "PixelSpacing"),
    (Tag(0x0028, 0x0034), "PixelAspectRatio"),
    (Tag(0x0028, 0x0100), "BitsAllocated"),
    (Tag(0x0028, 0x0101), "BitsStored"),
    (Tag(0x0028, 0x0102), "HighBit"),
    (Tag(0x0028, 0x0103), "PixelRepresentation"),
    (Tag(0x0028, 0x0106), "SmallestImagePixelValue"),
    (Tag(0x0028, 0x0107), "LargestImagePixelValue"),
    (Tag(0x0028, 0x1050), "WindowCenter"),
    (Tag(0x0028, 0x1051), "WindowWidth"),
    (Tag(0x0028, 0x1052), "RescaleIntercept"),
    (Tag(0x0028, 0x1053), "RescaleSlope"),
    (Tag(0x7FE0, 0x0010), "PixelData"),
    (Tag(0x0028, 0x0004), "PhotometricInterpretation"),
    (Tag(0x0028, 0x2110), "LossyImageCompression"),
    (Tag(0x0028, 0x2114), "LossyImageCompressionMethod"),
    (Tag(0x0028, 0x2112), "LossyImageCompressionRatio"),
    (Tag(0x0028, 0x0002), "SamplesPerPixel"),
    (Tag(0x0028, 0x0008), "NumberOfFrames"),
)

PROFILES: dict[str, frozenset[int]] = {"vindr": frozenset(int(tag) for tag, _ in VINDR_KEEP)}
