"""The composition root: the one place that builds a working gateway (and the custodian and
administration tools over a deployment's log) from settings. Delivery code (CLI, HTTP, proxies, SDK)
uses this package and never a concrete store."""

from lictor.model import data_subjects
from lictor.runtime.admin import KeyAdmin, ReviewAdmin, open_key_admin, open_review_admin
from lictor.runtime.custody import (
    DEFAULT_KEY_FILE,
    DEFAULT_PAYLOAD_KEY_FILE,
    AuditReader,
    Custodian,
    export_bundle,
    open_audit_reader,
    open_custodian,
    rotate_signing_key,
)
from lictor.runtime.gateway import (
    DEFAULT_DATABASE,
    DEFAULT_SAMPLE_RATES,
    Gateway,
)

__all__ = ["DEFAULT_DATABASE", "DEFAULT_KEY_FILE", "DEFAULT_PAYLOAD_KEY_FILE", "DEFAULT_SAMPLE_RATES", "AuditReader",
           "Custodian", "Gateway", "KeyAdmin", "ReviewAdmin", "data_subjects", "export_bundle", "open_audit_reader",
           "open_custodian", "open_key_admin", "open_review_admin", "rotate_signing_key"]
