"""Review core (no Qt, no napari): cases of many fields, the audit trail of every
reclassification, the slide-level count towards a target, model provenance, and the
one-writer lock of a project folder.  See ``docs/cases.md``.
"""
from .audit import (ACTIONS, AuditEntry, AuditLog, append_audit, current_user, last_actions,
                    read_audit)
from .case import (DEFAULT_TARGETS, KINDS, Case, check_case_id, read_cases, remove_case,
                   save_case)
from .errors import CaseError
from .lock import ProjectLock, ProjectLockedError
from .provenance import model_record
from .slide_count import CaseCount, case_count, count_arrays, count_tables, reviewed_cells

__all__ = ["ACTIONS", "AuditEntry", "AuditLog", "Case", "CaseCount", "CaseError",
           "DEFAULT_TARGETS", "KINDS", "ProjectLock", "ProjectLockedError", "append_audit",
           "case_count", "check_case_id", "count_arrays", "count_tables", "current_user", "last_actions",
           "model_record", "read_audit", "read_cases", "remove_case", "reviewed_cells",
           "save_case"]
