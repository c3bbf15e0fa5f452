"""The DICOM domain: UIDs, strict structure scanning, header reading, DICOM JSON, frames."""
