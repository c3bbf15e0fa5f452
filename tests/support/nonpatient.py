"""Non-Patient Instances for tests: a Color Palette of the corpus (pydicom's Hot Iron, the
well-known palette of PS3.6) and a Hanging Protocol built with pydicom (PS3.3 A.44, C.23)."""

from __future__ import annotations

import io

import httpx
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, HangingProtocolStorage, generate_uid

from tests.support.corpus import CORPUS
from tests.support.dicomweb import multipart, stow_content_type

__all__ = ["COLOR_PALETTE", "hanging_protocol", "store_palette"]

COLOR_PALETTE = CORPUS / "objects" / "color_palette_hotiron.dcm"


async def store_palette(client: httpx.AsyncClient, root: str) -> httpx.Response:
    """The Color Palette stored at ``{root}/color-palettes`` (PS3.18 12.5), as STOW-RS sends."""
    body, boundary = multipart([COLOR_PALETTE.read_bytes()])
    headers = {"Content-Type": stow_content_type(boundary)}
    return await client.post(f"{root}/color-palettes", content=body, headers=headers)


def _item(**values: object) -> Dataset:
    item = Dataset()
    for keyword, value in values.items():
        setattr(item, keyword, value)
    return item


def hanging_protocol(name: str, modality: str = "CT", sop_uid: str | None = None) -> bytes:
    """A Hanging Protocol (Part 10 bytes): one image set of ``modality``, one screen, one
    display set (the Type 1 attributes of PS3.3 C.23.1 to C.23.4)."""
    ds = Dataset()
    ds.SOPClassUID = HangingProtocolStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate = "20261207"
    ds.HangingProtocolName = name
    ds.HangingProtocolDescription = f"{modality} single view"
    ds.HangingProtocolLevel = "SITE"
    ds.HangingProtocolCreator = "pacsflow tests"
    ds.HangingProtocolCreationDateTime = "20261207120000"
    ds.HangingProtocolDefinitionSequence = Sequence(
        [_item(Modality=modality, Laterality="", ProcedureCodeSequence=Sequence())]
    )
    ds.NumberOfPriorsReferenced = 0
    selector = _item(
        ImageSetSelectorUsageFlag="MATCH",
        SelectorAttribute=0x00080060,
        SelectorAttributeVR="CS",
        SelectorCSValue=modality,
        SelectorValueNumber=1,
    )
    ds.ImageSetsSequence = Sequence(
        [
            _item(
                ImageSetSelectorSequence=Sequence([selector]),
                TimeBasedImageSetsSequence=Sequence(
                    [_item(ImageSetNumber=1, ImageSetSelectorCategory="RELATIVE_TIME")]
                ),
            )
        ]
    )
    ds.NumberOfScreens = 1
    ds.NominalScreenDefinitionSequence = Sequence(
        [_item(NumberOfVerticalPixels=1080, NumberOfHorizontalPixels=1920)]
    )
    ds.DisplaySetsSequence = Sequence(
        [
            _item(
                DisplaySetNumber=1,
                DisplaySetPresentationGroup=1,
                ImageSetNumber=1,
                ImageBoxesSequence=Sequence(
                    [
                        _item(
                            ImageBoxNumber=1,
                            DisplayEnvironmentSpatialPosition=[0.0, 1.0, 1.0, 0.0],
                            ImageBoxLayoutType="STACK",
                        )
                    ]
                ),
            )
        ]
    )
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
