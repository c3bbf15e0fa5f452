"""Audit trail: DICOM audit messages (PS3.15 A.5) to the audit topic and syslog over TLS."""
