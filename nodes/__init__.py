"""sdflow's built-in node packs."""

from nodes.conditioning import (
    CLIPSetLastLayer,
    CLIPTextEncode,
    CLIPTextEncodeSDXL,
    CLIPTextEncodeSDXLRefiner,
    ConditioningZeroOut,
)
from nodes.image_io import ImageCompare, LoadImage, LoadImageMask, PreviewImage, SaveImage
from nodes.image_transform import (
    EmptyImage,
    ImageBatch,
    ImageCompositeMasked,
    ImageCrop,
    ImageInvert,
    ImagePadForOutpaint,
    ImageScale,
    ImageScaleBy,
    ImageScaleToTotalPixels,
)
from nodes.loaders import (
    CheckpointLoader,
    CheckpointLoaderSimple,
    CLIPLoader,
    DiffusersLoader,
    DualCLIPLoader,
    UNETLoader,
    VAELoader,
)
from nodes.mask import (
    FeatherMask,
    GrowMask,
    ImageToMask,
    InvertMask,
    MaskComposite,
    MaskToImage,
    SolidMask,
    ThresholdMask,
)
from nodes.primitives import PrimitiveBoolean, PrimitiveFloat, PrimitiveInt, PrimitiveString, PrimitiveStringMultiline

NODES: list[type] = [
    # primitives
    PrimitiveInt,
    PrimitiveFloat,
    PrimitiveString,
    PrimitiveStringMultiline,
    PrimitiveBoolean,
    # image files
    LoadImage,
    LoadImageMask,
    SaveImage,
    PreviewImage,
    ImageCompare,
    # image transforms
    ImageScale,
    ImageScaleBy,
    ImageScaleToTotalPixels,
    ImageInvert,
    ImageBatch,
    EmptyImage,
    ImagePadForOutpaint,
    ImageCrop,
    ImageCompositeMasked,
    # masks
    SolidMask,
    InvertMask,
    MaskToImage,
    ImageToMask,
    MaskComposite,
    FeatherMask,
    GrowMask,
    ThresholdMask,
    # loaders
    CheckpointLoaderSimple,
    CheckpointLoader,
    DiffusersLoader,
    UNETLoader,
    VAELoader,
    CLIPLoader,
    DualCLIPLoader,
    # conditioning
    CLIPTextEncode,
    CLIPSetLastLayer,
    CLIPTextEncodeSDXL,
    CLIPTextEncodeSDXLRefiner,
    ConditioningZeroOut,
]
