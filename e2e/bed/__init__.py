"""The e2e test bed: a real Kubernetes control plane, Prometheus and the mesh simulator on loopback."""

from e2e.bed.audit import AuditEvent
from e2e.bed.bed import Bed
from e2e.bed.binaries import Binaries, ensure_binaries
from e2e.bed.errors import BedError
from e2e.bed.files import NEVER_READY, READY_AFTER

__all__ = ["NEVER_READY", "READY_AFTER", "AuditEvent", "Bed", "BedError", "Binaries", "ensure_binaries"]
