from .inference import (VideoFrames, VideoInputError, build_inference_pipeline,
                        inference_video, init_model, preprocess_clip,
                        with_dense_masks)

__all__ = [
    'VideoFrames', 'VideoInputError', 'build_inference_pipeline',
    'inference_video', 'init_model', 'preprocess_clip', 'with_dense_masks'
]
