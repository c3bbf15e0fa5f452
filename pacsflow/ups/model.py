"""The Unified Procedure Step vocabulary: UIDs, states, tags and the texts of PS3.18 Chapter 11.

The states and their transitions are those of PS3.4 CC.1.1; the Warning texts are quoted from
the Response Header Fields of each transaction (PS3.18 11.6.3.2, 11.7.3.2, 11.8.3.2, 11.10.3.2).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "FILTERED_SUBSCRIPTION_UID",
    "FINAL_STATES",
    "GLOBAL_SUBSCRIPTION_UID",
    "UPS_EVENT_SOP_CLASS",
    "UPS_PUSH_SOP_CLASS",
    "State",
    "Tag",
    "Warnings",
]

UPS_PUSH_SOP_CLASS: Final = "1.2.840.10008.5.1.4.34.6.1"  # every UPS is one (PS3.4 CC.3.1)
UPS_EVENT_SOP_CLASS: Final = "1.2.840.10008.5.1.4.34.6.4"
GLOBAL_SUBSCRIPTION_UID: Final = "1.2.840.10008.5.1.4.34.5"  # Worklist Subscription
FILTERED_SUBSCRIPTION_UID: Final = "1.2.840.10008.5.1.4.34.5.1"  # Filtered Worklist Subscription


class State(StrEnum):
    """Procedure Step State (0074,1000), PS3.4 Table CC.1.1-1."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN PROGRESS"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"


FINAL_STATES: Final = frozenset({State.COMPLETED, State.CANCELED})


class Tag:
    """Tags of the attributes the Worklist rules name, as DICOM JSON keys."""

    SPECIFIC_CHARACTER_SET: Final = "00080005"
    SOP_CLASS_UID: Final = "00080016"
    SOP_INSTANCE_UID: Final = "00080018"
    TRANSACTION_UID: Final = "00081195"
    CODE_VALUE: Final = "00080100"
    CODING_SCHEME_DESIGNATOR: Final = "00080102"
    CODE_MEANING: Final = "00080104"
    PATIENT_NAME: Final = "00100010"
    PATIENT_ID: Final = "00100020"
    STUDY_INSTANCE_UID: Final = "0020000D"
    SCHEDULED_PROCEDURE_STEP_START: Final = "00404005"
    SCHEDULED_PROCEDURE_STEP_MODIFICATION: Final = "00404010"
    SCHEDULED_STATION_NAME_CODES: Final = "00404025"
    SCHEDULED_HUMAN_PERFORMERS: Final = "00404034"
    INPUT_READINESS_STATE: Final = "00404041"
    PERFORMED_STATION_NAME_CODES: Final = "00404028"
    PERFORMED_WORKITEM_CODES: Final = "00404019"
    PERFORMED_START: Final = "00404050"
    PERFORMED_END: Final = "00404051"
    CANCELLATION_DATETIME: Final = "00404052"
    PROCEDURE_STEP_STATE: Final = "00741000"
    PROGRESS_INFORMATION: Final = "00741002"
    PROGRESS: Final = "00741004"
    PROGRESS_DESCRIPTION: Final = "00741006"
    COMMUNICATIONS_URI: Final = "00741008"
    CONTACT_URI: Final = "0074100A"
    CONTACT_DISPLAY_NAME: Final = "0074100C"
    DISCONTINUATION_REASON_CODES: Final = "0074100E"
    PRIORITY: Final = "00741200"
    WORKLIST_LABEL: Final = "00741202"
    PROCEDURE_STEP_LABEL: Final = "00741204"
    PERFORMED_PROCEDURE: Final = "00741216"
    REQUESTING_AE: Final = "00741236"
    REASON_FOR_CANCELLATION: Final = "00741238"
    SCP_STATUS: Final = "00741242"
    SUBSCRIPTION_LIST_STATUS: Final = "00741244"
    UPS_LIST_STATUS: Final = "00741246"


class Warnings:
    """The Warning texts of PS3.18 Chapter 11, word for word."""

    ALREADY_CANCELED: Final = "The UPS is already in the requested state of CANCELED."
    ALREADY_COMPLETED: Final = "The UPS is already in the requested state of COMPLETED."
    TRANSACTION_UID_MISSING: Final = "The Transaction UID is missing."
    TRANSACTION_UID_INCORRECT: Final = "The Transaction UID is incorrect."
    STATE_INCONSISTENT: Final = (
        "The submitted request is inconsistent with the state of the UPS Instance."
    )
    NOT_CLAIMED: Final = "The target URI did not reference a claimed Workitem."
    UPDATE_INCONSISTENT: Final = (
        "The submitted request is inconsistent with the current state of the Workitem."
    )
    UPDATED_WITH_MODIFICATIONS: Final = "The Workitem was updated with modifications."
    CANCEL_COMPLETED: Final = "The UPS is already COMPLETED."
    PERFORMER_UNREACHABLE: Final = "The performer cannot be contacted."
    FILTERED_NOT_SUPPORTED: Final = "Filtered Worklist Subscriptions are not supported."
    DELETION_LOCK_NOT_GRANTED: Final = "Deletion Lock not granted."
