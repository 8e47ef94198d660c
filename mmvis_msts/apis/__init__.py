from .inference import (VideoFrames, VideoInputError, build_inference_pipeline,
                        inference_video, init_model)

__all__ = [
    'VideoFrames', 'VideoInputError', 'build_inference_pipeline',
    'inference_video', 'init_model'
]
