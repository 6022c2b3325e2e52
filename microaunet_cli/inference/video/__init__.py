"""``predict`` on colonoscopy videos: an overlay video, masks, a per-frame CSV and a speed summary.

Three stages run at once, joined by bounded queues, so the network waits on neither the decoder nor
the encoder (OpenCV and torch release the GIL in their heavy calls):

- the **reader** thread decodes frames (BGR, as OpenCV gives them), converts them to RGB and resizes
  them to the network's input size with :func:`to_input_size` — exactly what an image file goes through;
- the **calling** thread runs the network on batches (``Predictor.probs``), the only stage that is timed as
  "model";
- the **writer** thread resizes each probability map back with :func:`to_original_size`, thresholds it
  as the image path does, draws the outline and encodes.

So a frame's mask equals the mask ``predict`` gives for that frame saved as a PNG. Videos are written
under temporary names and renamed when their writers are released, also after Ctrl-C: the file then
holds the frames done so far and plays.

``sources`` finds the videos and the clip to read, ``stages`` holds the reader and writer threads,
``pipeline`` runs one video and a folder of them.
"""

from microaunet_cli.inference.video.pipeline import (
    FRAME_COLUMNS,
    VIDEO_COLUMNS,
    VideoReport,
    predict_video,
    predict_video_source,
    predict_videos,
)
from microaunet_cli.inference.video.sources import (
    VIDEO_SUFFIXES,
    Clip,
    holds_images,
    ignored_files,
    is_video,
    list_videos,
    open_video,
    output_dirs,
    require_inputs,
)
from microaunet_cli.inference.video.stages import MASK_CODEC, frame_row

__all__ = [
    "FRAME_COLUMNS",
    "MASK_CODEC",
    "VIDEO_COLUMNS",
    "VIDEO_SUFFIXES",
    "Clip",
    "VideoReport",
    "frame_row",
    "holds_images",
    "ignored_files",
    "is_video",
    "list_videos",
    "open_video",
    "output_dirs",
    "predict_video",
    "predict_video_source",
    "predict_videos",
    "require_inputs",
]
