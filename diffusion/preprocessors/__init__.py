"""ControlNet preprocessors ("annotators"): control maps (edges, lines, depth, normals, poses,
segments) computed from images, through controlnet-aux.

Canny, content shuffle, standard lineart, scribble and tile need no weights. The others read
their files from the `annotators` model folder (`models/annotators/`, or the folders
extra_model_paths.yaml adds under that key), flat, under the names lllyasviel/Annotators uses:

    models/annotators/
        ControlNetHED.pth                HED, fake scribble
        table5_pidinet.pth               PiDiNet
        mlsd_large_512_fp32.pth          M-LSD
        sk_model.pth, sk_model2.pth      realistic lineart (fine, coarse)
        netG.pth                         anime lineart
        dpt_hybrid-midas-501f0c75.pt     MiDaS depth and normal maps
        ZoeD_M12_N.pt                    Zoe depth
        scannet.pt                       BAE normal map
        body_pose_model.pth, hand_pose_model.pth, facenet.pth    OpenPose
        mobile_sam.pt                    Segment Anything (MobileSAM, from dhkim2810/MobileSAM)
        yolox_l.onnx                     DWPose's person detector (from yzd-v/DWPose)
        dw-ll_ucoco_384.onnx             DWPose's keypoints, 288×384 (from yzd-v/DWPose), or
        dw-ll_ucoco.onnx                 the same at 192×256 (from hr16/UnJIT-DWPose)

A `.safetensors` file of the same stem (e.g. `ControlNetHED.safetensors`) may stand in for any of
the weight files. Pickled files are read with `weights_only=True` only; see `weights`. The ONNX
files (which hold no code) are run by OpenCV's DNN module; see `dwpose`.
"""

from diffusion.preprocessors.annotators import ANNOTATORS, annotate, fingerprint, load
from diffusion.preprocessors.simple import canny
from diffusion.preprocessors.weights import AnnotatorUnavailable

__all__ = ["ANNOTATORS", "AnnotatorUnavailable", "annotate", "canny", "fingerprint", "load"]
