"""PS3.15 Annex E Table E.1-1 (Basic Application Level Confidentiality Profile) as data.

``TABLE_E1_1`` holds the rows of the table (transcribed from an edition of about 2020) that name
one attribute: 456, each with its Basic Profile action code as the table writes it, keyed by
the pydicom data dictionary's keywords. The repeating-group and private rows (curves, overlays,
odd groups) are rules in ``pacsflow.render.anonymize``.
``ACTIONS`` resolves each code to the one action applied without knowing the IOD (whose
attribute types the combined codes depend on, PS3.15 E.3.1):

* ``X/Z`` becomes ``Z`` (an empty value satisfies both a Type 2 and a Type 3 attribute);
* ``D``, ``X/D``, ``Z/D`` and ``X/Z/D`` become ``D`` (a dummy satisfies a Type 1 attribute);
* ``X/Z/U*`` (Referenced/Source Image Sequence) becomes ``K``: the sequence is kept and its
  UIDs are replaced by their own ``U`` rows.

``EXTENSIONS`` adds attributes of later editions of the table, and content-item values that the
``D`` of Content Sequence (0040,A730) and Graphic Annotation Sequence (0070,0001) covers;
none of them is a row of the table.
"""

from __future__ import annotations

from typing import Final, Literal

from pydicom.datadict import tag_for_keyword

__all__ = [
    "ACTIONS",
    "DUMMY_CODE_SEQUENCES",
    "EXTENSIONS",
    "IDENTIFYING_GROUPS",
    "IDENTIFYING_GROUPS_KEEP",
    "RESOLVED",
    "TABLE_E1_1",
    "UID_KEEP",
    "Action",
]

Action = Literal["X", "Z", "D", "U", "K"]

RESOLVED: Final[dict[str, Action]] = {
    "X": "X",
    "Z": "Z",
    "X/Z": "Z",
    "D": "D",
    "X/D": "D",
    "Z/D": "D",
    "X/Z/D": "D",
    "U": "U",
    "X/Z/U*": "K",
}

_ROWS: Final = {
    "X": """
    AcquisitionComments AcquisitionProtocolDescription ActualHumanPerformersSequence
    AdditionalPatientHistory AddressTrial AdmissionID AdmittingDate
    AdmittingDiagnosesCodeSequence AdmittingDiagnosesDescription AdmittingTime
    AffectedSOPInstanceUID Allergies Arbitrary AuthorObserverSequence BeamDescription
    BolusDescription BranchOfService CameraOwnerName CassetteID
    ClinicalTrialProtocolEthicsCommitteeApprovalNumber ClinicalTrialSeriesDescription
    ClinicalTrialSeriesID ClinicalTrialTimePointDescription CommentsOnRadiationDose
    CommentsOnThePerformedProcedureStep CompensatorDescription
    ConfidentialityConstraintOnPatientDataDescription ConsultingPhysicianIdentificationSequence
    ContainerComponentID ContainerDescription ContentCreatorIdentificationCodeSequence
    ContributionDescription CountryOfResidence CurrentObserverTrial CurrentPatientLocation
    CurveDate CurveTime CustodialOrganizationSequence DataSetTrailingPadding
    DecompositionDescription DerivationDescription DeviceDescription DeviceSettingDescription
    DigitalSignaturesSequence DischargeDiagnosisDescription DistributionAddress
    DistributionName DoseReferenceDescription EntityDescription EntityName
    EquipmentFrameOfReferenceDescription EthnicGroup ExpectedCompletionDateTime
    FixationDeviceDescription FractionGroupDescription FrameComments GantryID GeneratorID
    GPSVersionID GPSLatitudeRef GPSLatitude GPSLongitudeRef GPSLongitude GPSAltitudeRef
    GPSAltitude GPSTimeStamp GPSSatellites GPSStatus GPSMeasureMode GPSDOP GPSSpeedRef GPSSpeed
    GPSTrackRef GPSTrack GPSImgDirectionRef GPSImgDirection GPSMapDatum GPSDestLatitudeRef
    GPSDestLatitude GPSDestLongitudeRef GPSDestLongitude GPSDestBearingRef GPSDestBearing
    GPSDestDistanceRef GPSDestDistance GPSProcessingMethod GPSAreaInformation GPSDateStamp
    GPSDifferential
    HumanPerformerName HumanPerformerOrganization IconImageSequence IdentifyingComments
    ImageComments ImagePresentationComments ImagingServiceRequestComments Impressions
    InstanceCoercionDateTime InstanceOriginStatus InstitutionAddress
    InstitutionalDepartmentName InstitutionalDepartmentTypeCodeSequence
    InsurancePlanIdentification IntendedRecipientsOfResultsIdentificationSequence
    InterpretationApproverSequence InterpretationAuthor InterpretationDiagnosisDescription
    InterpretationIDIssuer InterpretationRecorder InterpretationText InterpretationTranscriber
    IssuerOfAdmissionID IssuerOfAdmissionIDSequence IssuerOfPatientID IssuerOfServiceEpisodeID
    IssuerOfServiceEpisodeIDSequence LastMenstrualDate LensMake LensModel LensSerialNumber
    LensSpecification LongDeviceDescription MAC MakerNote MedicalAlerts MedicalRecordLocator
    MilitaryRank ModifiedAttributesSequence ModifiedImageDescription ModifyingDeviceID
    MultienergyAcquisitionDescription NameOfPhysiciansReadingStudy
    NamesOfIntendedRecipientsOfResults NonconformingDataElementValue
    NonconformingModifiedAttributesSequence ObservationDateTrial ObservationTimeTrial
    Occupation OrderCallbackPhoneNumber OrderCallbackTelecomInformation OrderEnteredBy
    OrderEntererLocation OriginalAttributesSequence OtherPatientIDs OtherPatientIDsSequence
    OtherPatientNames OverlayDate OverlayTime ParticipantSequence PatientAddress PatientAge
    PatientBirthName PatientBirthTime PatientComments PatientInstitutionResidence
    PatientInsurancePlanCodeSequence PatientMotherBirthName PatientPrimaryLanguageCodeSequence
    PatientPrimaryLanguageModifierCodeSequence PatientReligiousPreference PatientSize
    PatientState PatientTelecomInformation PatientTelephoneNumbers PatientTransportArrangements
    PatientWeight PerformedLocation PerformedProcedureStepDescription
    PerformedProcedureStepEndDate PerformedProcedureStepEndDateTime
    PerformedProcedureStepEndTime PerformedProcedureStepID PerformedProcedureStepStartDate
    PerformedProcedureStepStartDateTime PerformedProcedureStepStartTime PerformedStationAETitle
    PerformedStationGeographicLocationCodeSequence PerformedStationName
    PerformedStationNameCodeSequence PerformingPhysicianIdentificationSequence
    PerformingPhysicianName PersonAddress PersonTelecomInformation PersonTelephoneNumbers
    PhysicianApprovingInterpretation PhysiciansOfRecord
    PhysiciansOfRecordIdentificationSequence PhysiciansReadingStudyIdentificationSequence
    PlateID PreMedication PregnancyStatus PrescriptionDescription PriorTreatmentDoseDescription
    ProcedureStepCancellationDateTime ROIDescription ROIGenerationDescription
    ROIObservationDescription ROIObservationLabel RTPlanDescription RTPlanName
    ReasonForOmissionDescription ReasonForRequestedProcedureCodeSequence ReasonForStudy
    ReasonForTheImagingServiceRequest ReasonForTheRequestedProcedure ReasonForVisit
    ReasonForVisitCodeSequence ReferencedDigitalSignatureSequence
    ReferencedPatientAliasSequence ReferencedPatientPhotoSequence ReferencedPatientSequence
    ReferencedSOPInstanceMACSequence ReferringPhysicianAddress
    ReferringPhysicianIdentificationSequence ReferringPhysicianTelephoneNumbers
    RegionOfResidence RequestAttributesSequence RequestedContrastAgent
    RequestedProcedureComments RequestedProcedureID RequestedProcedureLocation
    RequestedSeriesDescription RequestingPhysician RequestingService
    RespiratoryMotionCompensationTechniqueDescription ResponsibleOrganization ResponsiblePerson
    ResultsComments ResultsDistributionListSequence ResultsIDIssuer
    ScheduledHumanPerformersSequence ScheduledPatientInstitutionResidence
    ScheduledPerformingPhysicianIdentificationSequence ScheduledPerformingPhysicianName
    ScheduledProcedureStepDescription ScheduledProcedureStepEndDate
    ScheduledProcedureStepEndTime ScheduledProcedureStepExpirationDateTime
    ScheduledProcedureStepID ScheduledProcedureStepLocation
    ScheduledProcedureStepModificationDateTime ScheduledProcedureStepStartDate
    ScheduledProcedureStepStartDateTime ScheduledProcedureStepStartTime ScheduledStationAETitle
    ScheduledStationGeographicLocationCodeSequence ScheduledStationName
    ScheduledStationNameCodeSequence ScheduledStudyLocation ScheduledStudyLocationAETitle
    SeriesDescription ServiceEpisodeDescription ServiceEpisodeID SetupTechniqueDescription
    ShieldingDeviceDescription SlideIdentifier SmokingStatus SourceManufacturer SpecialNeeds
    SpecimenAccessionNumber SpecimenDetailedDescription SpecimenShortDescription
    StructureSetDescription StructureSetName StudyComments StudyDescription StudyIDIssuer
    TelephoneNumberTrial TextComments TextString TimezoneOffsetFromUTC TopicAuthor
    TopicKeywords TopicSubject TopicTitle TransducerIdentificationSequence TreatmentMachineName
    UDISequence UniqueDeviceIdentifier VerbalSourceIdentifierCodeSequenceTrial
    VerbalSourceTrial VisitComments XRayDetectorLabel
    """,
    "Z": """
    AccessionNumber ClinicalTrialCoordinatingCenterName ClinicalTrialProtocolName
    ClinicalTrialSiteID ClinicalTrialSiteName ClinicalTrialTimePointID
    ConceptualVolumeCombinationDescription ConceptualVolumeDescription ConsultingPhysicianName
    DeviceAlternateIdentifier FillerOrderNumberImagingServiceRequest FractionationNotes
    IssuerOfTheContainerIdentifierSequence IssuerOfTheSpecimenIdentifierSequence
    ManufacturerDeviceIdentifier PatientBirthDate PatientID PatientName PatientSex
    PlacerOrderNumberImagingServiceRequest PrescriptionNotes PrescriptionNotesSequence
    ROIInterpreter ROIName RTAccessoryDeviceSlotID RTAccessoryHolderSlotID
    RTPhysicianIntentNarrative RadiationGenerationModeDescription ReasonForSuperseding
    ReferringPhysicianName SpecimenPreparationSequence StructureSetDate StudyDate StudyID
    StudyTime TreatmentTechniqueNotes VerifyingObserverIdentificationCodeSequence
    """,
    "X/Z": """
    AcquisitionContextSequence AcquisitionDate AcquisitionTime BarcodeValue LabelText
    PatientSexNeutered ReferencedStudySequence RequestedProcedureDescription ReviewerName
    SourceSerialNumber
    """,
    "D": """
    AcquisitionFieldOfViewLabel ClinicalTrialProtocolEthicsCommitteeName
    ClinicalTrialProtocolID ClinicalTrialSponsorName ClinicalTrialSubjectID
    ClinicalTrialSubjectReadingID ContainerIdentifier ContentSequence DeviceLabel EntityLabel
    EntityLongLabel FlowIdentifier FlowIdentifierSequence FrameOriginTimestamp
    GraphicAnnotationSequence ImpedanceMeasurementDateTime InterlockDateTime
    InterlockDescription InterlockOriginDescription OverrideDateTime
    PersonIdentificationCodeSequence PersonName RTPlanLabel RTPrescriptionLabel
    RTToleranceSetLabel RadiationDoseIdentificationLabel RadiationDoseInVivoMeasurementLabel
    RadiationGenerationModeLabel RecordedRTControlPointDateTime SourceEndDateTime
    SourceIdentifier SourceStartDateTime SpecimenIdentifier StructureSetLabel
    TreatmentPositionGroupLabel TreatmentSite TreatmentToleranceViolationDateTime
    TreatmentToleranceViolationDescription UserContentLabel UserContentLongLabel
    VerifyingObserverName VerifyingObserverSequence VerifyingOrganization XRayDetectorID
    XRaySourceID
    """,
    "X/D": """
    AcquisitionDeviceProcessingDescription DetectorID EndAcquisitionDateTime FirstTreatmentDate
    IntendedPhaseEndDate IntendedPhaseStartDate MostRecentTreatmentDate
    OperatorIdentificationSequence ProtocolName RTPlanDate RTPlanTime RTTreatmentApproachLabel
    SeriesDate SeriesTime StartAcquisitionDateTime StructureSetTime TreatmentDate TreatmentTime
    """,
    "Z/D": "ContentCreatorName ContentDate ContentTime ContrastBolusAgent",
    "X/Z/D": """
    AcquisitionDateTime DeviceSerialNumber InstitutionCodeSequence InstitutionName
    OperatorsName ReferencedPerformedProcedureStepSequence StationName
    """,
    "U": """
    ConcatenationUID ConceptualVolumeUID ConstituentConceptualVolumeUID DeviceUID
    DigitalSignatureUID DimensionOrganizationUID DoseReferenceUID DosimetricObjectiveUID
    FailedSOPInstanceUIDList FiducialUID FrameOfReferenceUID InstanceCreatorUID
    IrradiationEventUID LargePaletteColorLookupTableUID ManufacturerDeviceClassUID
    MediaStorageSOPInstanceUID MultiplexGroupUID ObservationSubjectUIDTrial ObservationUID
    PaletteColorLookupTableUID PatientSetupUID PresentationDisplayCollectionUID
    PresentationSequenceCollectionUID RTTreatmentPhaseUID ReferencedConceptualVolumeUID
    ReferencedDoseReferenceUID ReferencedDosimetricObjectiveUID ReferencedFiducialsUID
    ReferencedFrameOfReferenceUID ReferencedGeneralPurposeScheduledProcedureStepTransactionUID
    ReferencedObservationUIDTrial ReferencedSOPInstanceUID ReferencedSOPInstanceUIDInFile
    RelatedFrameOfReferenceUID RequestedSOPInstanceUID SOPInstanceUID SeriesInstanceUID
    SourceConceptualVolumeUID SpecimenUID StorageMediaFileSetUID StudyInstanceUID
    SynchronizationFrameOfReferenceUID TargetUID TemplateExtensionCreatorUID
    TemplateExtensionOrganizationUID TrackingUID TransactionUID TreatmentPositionGroupUID
    TreatmentSessionUID UID
    """,
    "X/Z/U*": "ReferencedImageSequence SourceImageSequence",
}

_EXTENSIONS: Final[dict[Action, str]] = {
    # Dates and times, issuers and AE titles that later editions list, and the file meta
    # attributes naming the sender.
    "X": """
    InstanceCreationDate InstanceCreationTime IssuerOfAccessionNumberSequence
    DateOfSecondaryCapture TimeOfSecondaryCapture DateOfLastCalibration TimeOfLastCalibration
    DateOfLastDetectorCalibration TimeOfLastDetectorCalibration SourceApplicationEntityTitle
    SendingApplicationEntityTitle ReceivingApplicationEntityTitle PrivateInformationCreatorUID
    PrivateInformation
    """,
    # Content item values (TEXT, DATETIME, DATE, TIME) and observation times in an SR tree,
    # and the free text of graphic annotations: Type 1 where they occur, so dummies.
    "D": """
    TextValue DateTime Date Time VerificationDateTime ObservationDateTime UnformattedTextValue
    """,
}


def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"{keyword} is not in the pydicom data dictionary")
    return int(tag)


def _tags(keywords: str) -> frozenset[int]:
    return frozenset(_tag(keyword) for keyword in keywords.split())


TABLE_E1_1: Final[dict[int, str]] = {
    tag: code for code, keywords in _ROWS.items() for tag in _tags(keywords)
}
EXTENSIONS: Final[dict[int, Action]] = {
    tag: action for action, keywords in _EXTENSIONS.items() for tag in _tags(keywords)
}
ACTIONS: Final[dict[int, Action]] = {
    **EXTENSIONS,
    **{tag: RESOLVED[code] for tag, code in TABLE_E1_1.items()},
}

# Groups whose every attribute describes the patient, the visit or the (retired) results:
# what the table does not list there is removed (X), except these characteristics that
# identify no one and that some IODs require.
IDENTIFYING_GROUPS: Final = frozenset({0x0010, 0x0038, 0x4008})
IDENTIFYING_GROUPS_KEEP: Final = _tags(
    """
    QualityControlSubject PatientSpeciesDescription PatientSpeciesCodeSequence
    PatientBreedDescription PatientBreedCodeSequence AnatomicalOrientationType
    ExaminedBodyThickness
    """
)
# UI attributes the table does not list are replaced like U rows, except these: they name
# classes, syntaxes and coding schemes, not instances.
UID_KEEP: Final = _tags(
    """
    SOPClassUID MediaStorageSOPClassUID TransferSyntaxUID ImplementationClassUID
    ReferencedSOPClassUID ReferencedSOPClassUIDInFile ReferencedTransferSyntaxUIDInFile
    ReferencedRelatedGeneralSOPClassUIDInFile RelatedGeneralSOPClassUID
    OriginalSpecializedSOPClassUID SOPClassesInStudy AffectedSOPClassUID RequestedSOPClassUID
    CodingSchemeUID MappingResourceUID
    """
)
# Code sequences whose D means one dummy code item (their codes name a person or a place).
DUMMY_CODE_SEQUENCES: Final = _tags("PersonIdentificationCodeSequence InstitutionCodeSequence")
