"""Which video frames are read, predicted and batched (inference/video: the reader's frame selection and
the network stage's batches), with a stand-in capture whose frames carry their own index, so every
selection can be checked frame by frame without decoding a file."""

from __future__ import annotations

import queue
import threading

import numpy as np
import pytest

from microaunet_cli.inference.video.pipeline import _batches
from microaunet_cli.inference.video.sources import Clip
from microaunet_cli.inference.video.stages import Frame, Reader, put_unless_stopped


class Capture:
    """``n`` frames of 6×8 BGR whose blue channel holds the frame's index; counts grabs and reads."""

    def __init__(self, n: int) -> None:
        self.n, self.pos, self.grabs, self.reads = n, 0, 0, 0

    def _frame(self) -> np.ndarray:
        frame = np.zeros((6, 8, 3), np.uint8)
        frame[..., 0] = self.pos
        frame[..., 2] = 200  # red: the network input must come out RGB
        return frame

    def grab(self) -> bool:
        self.grabs += 1
        if self.pos >= self.n:
            return False
        self.pos += 1
        return True

    def read(self):
        self.reads += 1
        if self.pos >= self.n:
            return False, None
        frame = self._frame()
        self.pos += 1
        return True, frame


def _clip(first=0, stop=None, every=1) -> Clip:
    return Clip(fps=25.0, width=8, height=6, declared=0, first=first, stop=stop, every=every)


def _read_all(cap: Capture, clip: Clip, stop: threading.Event | None = None) -> tuple[list, Reader]:
    out: queue.Queue = queue.Queue()
    reader = Reader(cap, clip, (3, 4), out, stop or threading.Event())
    reader.run()
    items = []
    while not out.empty():
        items.append(out.get())
    return items, reader


def test_every_frame_from_start_to_stop_with_every_nth_predicted():
    cap = Capture(20)
    items, reader = _read_all(cap, _clip(first=3, stop=12, every=3))
    assert items[-1] is None  # the stream ends with None
    frames = items[:-1]
    assert [f.index for f in frames] == list(range(3, 12))
    assert [int(f.bgr[0, 0, 0]) for f in frames] == list(range(3, 12))  # the frame of that index
    assert [f.small is not None for f in frames] == [True, False, False] * 3  # 3, 6, 9 predicted
    assert cap.grabs == 3 and reader.next_index == 12 and reader.error is None


def test_every_nth_counts_from_the_start_frame():
    items, _ = _read_all(Capture(12), _clip(first=2, stop=11, every=3))
    assert [f.index for f in items[:-1] if f.small is not None] == [2, 5, 8]


def test_the_network_input_is_the_frame_resized_and_in_rgb():
    items, _ = _read_all(Capture(2), _clip())
    small = items[0].small
    assert small.shape == (3, 4, 3)
    assert small[..., 0].max() == 200 and small[..., 2].max() == 0  # red first
    assert items[1].small[..., 2].max() == 1  # frame 1's index, now the last channel


def test_to_the_end_of_the_clip_when_no_stop_is_given():
    items, reader = _read_all(Capture(5), _clip(first=0, stop=None, every=2))
    assert [f.index for f in items[:-1]] == [0, 1, 2, 3, 4]
    assert [f.small is not None for f in items[:-1]] == [True, False, True, False, True]
    assert reader.next_index == 5


def test_a_start_beyond_the_clip_reads_nothing():
    cap = Capture(4)
    items, reader = _read_all(cap, _clip(first=10))
    assert items == [None]
    assert cap.grabs == 5 and cap.reads == 1 and reader.next_index == 4


def test_a_stop_request_ends_the_seek_and_the_reading():
    stop = threading.Event()
    stop.set()
    cap = Capture(10)
    out: queue.Queue = queue.Queue()
    Reader(cap, _clip(first=5), (3, 4), out, stop).run()
    assert cap.grabs == 0 and cap.reads == 0
    assert out.empty()  # stopping: not even the end marker is forced in


def test_an_error_is_kept_for_the_caller_and_the_stream_still_ends():
    class Broken(Capture):
        def read(self):
            raise RuntimeError("decoder fell over")

    items, reader = _read_all(Broken(3), _clip())
    assert items == [None]
    assert isinstance(reader.error, RuntimeError) and str(reader.error) == "decoder fell over"


def test_put_unless_stopped_waits_for_room_and_gives_up_on_stop():
    q: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    assert put_unless_stopped(q, 1, stop) is True and q.get() == 1
    q.put(0)  # full
    threading.Timer(0.25, stop.set).start()
    assert _within(5.0, put_unless_stopped, q, 2, stop) == [False]  # no room ever: returns on stop
    assert q.get() == 0 and q.empty()


def test_put_unless_stopped_puts_when_room_appears():
    q: queue.Queue = queue.Queue(maxsize=1)
    q.put(0)  # full until the timer takes the item out
    threading.Timer(0.25, q.get).start()
    assert put_unless_stopped(q, 2, threading.Event()) is True
    assert q.get_nowait() == 2


def _within(seconds: float, fn, *args) -> list:
    """``[fn(*args)]``, or ``[]`` when it has not returned after ``seconds`` (a hang fails, not stalls)."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(fn(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    return result


def _frames(predicted: list[bool]) -> queue.Queue:
    q: queue.Queue = queue.Queue()
    for i, p in enumerate(predicted):
        q.put(Frame(i, np.zeros((1, 1, 3), np.uint8), np.zeros((1, 1, 3), np.uint8) if p else None))
    q.put(None)
    return q


@pytest.mark.parametrize(
    "predicted, size, batches",
    [
        ([True] * 7, 3, [[0, 1, 2], [3, 4, 5], [6]]),
        ([True] * 6, 3, [[0, 1, 2], [3, 4, 5]]),
        # --every 3: a frame only drawn cuts the batch and goes on alone
        ([True, False, False] * 3, 4, [[0], [1], [2], [3], [4], [5], [6], [7], [8]]),
        ([True, True, False, True, True, True], 2, [[0, 1], [2], [3, 4], [5]]),
        ([False, True], 2, [[0], [1]]),
        ([], 2, []),
    ],
)
def test_batches_hold_at_most_size_predicted_frames_and_cut_before_a_drawn_one(predicted, size, batches):
    got = [[f.index for f in batch] for batch in _batches(_frames(predicted), size)]
    assert got == batches
