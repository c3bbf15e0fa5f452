"""The OHIF Viewer at ``/viewer``: the pinned prebuilt ``@ohif/app``, installed once, and its
configuration for this archive (docs/console.md)."""

from pacsflow.viewer.package import PIN, InstalledViewer, ViewerPin, installed

__all__ = ["PIN", "InstalledViewer", "ViewerPin", "installed"]
