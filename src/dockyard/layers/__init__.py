"""Image layers as tar streams (blocking world): decompression, safe apply, whiteouts.
It must never follow a path outside the directory it was given, and imports only
utilities (no images, no storage driver: the driver is passed in).

``decompress`` sniffs the compression of a layer blob; ``apply_tar`` extracts it into a
directory prepared by a storage driver, in the whiteout encoding that driver asks for
(``Driver.whiteouts``).  ``tarsplit`` records a tar while ``apply_tar`` reads it and
rebuilds the identical tar later from the extracted directory, so a layer is stored once.
"""

from dockyard.layers.apply import apply_tar
from dockyard.layers.compression import decompress

__all__ = ["apply_tar", "decompress"]
