"""sharedcare: a shared health and care record served over FHIR R4."""

__version__ = "0.1.0"
FHIR_VERSION = "4.0.1"
