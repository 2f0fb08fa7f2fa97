"""cxrlab.dicom."""
