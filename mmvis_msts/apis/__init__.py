from .compile import COMPILED_PARTS, compile_model
from .inference import (VideoFrames, VideoInputError, build_inference_pipeline,
                        inference_video, init_model, preprocess_clip,
                        with_dense_masks)

__all__ = [
    'COMPILED_PARTS', 'VideoFrames', 'VideoInputError',
    'build_inference_pipeline', 'compile_model', 'inference_video',
    'init_model', 'preprocess_clip', 'with_dense_masks'
]
